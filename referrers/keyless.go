package referrers

import (
	"context"
	"fmt"
	"time"

	"github.com/sigstore/sigstore-go/pkg/sign"
)

// KeylessOptions say where keyless signing gets its certificate and logs
// its signature. Both URLs are required; the token is the signer's OIDC
// identity token.
type KeylessOptions struct {
	FulcioURL string
	RekorURL  string
	IDToken   string
	// Timeout bounds each request (0: 30 s).
	Timeout time.Duration
}

// NewKeylessSigner signs with a fresh key certified by Fulcio for the
// identity in the token, and logs every signature in Rekor.
func NewKeylessSigner(_ context.Context, o KeylessOptions) (*Signer, error) {
	if o.FulcioURL == "" || o.RekorURL == "" {
		return nil, fmt.Errorf("keyless: Fulcio and Rekor URLs are required")
	}
	if o.IDToken == "" {
		return nil, fmt.Errorf("keyless: no identity token")
	}
	kp, err := sign.NewEphemeralKeypair(nil)
	if err != nil {
		return nil, err
	}
	return &Signer{
		keypair: kp,
		opts: sign.BundleOptions{
			CertificateProvider:        sign.NewFulcio(&sign.FulcioOptions{BaseURL: o.FulcioURL, Timeout: o.Timeout, Retries: 2}),
			CertificateProviderOptions: &sign.CertificateProviderOptions{IDToken: o.IDToken},
			TransparencyLogs:           []sign.Transparency{sign.NewRekor(&sign.RekorOptions{BaseURL: o.RekorURL, Timeout: o.Timeout, Retries: 2})},
		},
		Identity: "keyless",
	}, nil
}
