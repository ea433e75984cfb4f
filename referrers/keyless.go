package referrers

import (
	"context"
	"crypto/x509"
	"fmt"
	"sync"
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
// identity in the token, and logs every signature in Rekor. The certificate
// is requested here, within ctx, so a token Fulcio refuses fails now,
// before anything is signed or pushed, and Identity names the certified
// identity; it is reused for every signature while it is valid, and
// renewed (within the signing call's context) once it is about to expire.
func NewKeylessSigner(ctx context.Context, o KeylessOptions) (*Signer, error) {
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
	certOpts := &sign.CertificateProviderOptions{IDToken: o.IDToken}
	fulcio := &renewingCert{fulcio: sign.NewFulcio(&sign.FulcioOptions{BaseURL: o.FulcioURL, Timeout: o.Timeout, Retries: 2})}
	if _, err := fulcio.GetCertificate(ctx, kp, certOpts); err != nil {
		return nil, fmt.Errorf("keyless: certificate from %s: %w", o.FulcioURL, err)
	}
	return &Signer{
		keypair: kp,
		opts: sign.BundleOptions{
			CertificateProvider:        fulcio,
			CertificateProviderOptions: certOpts,
			TransparencyLogs:           []sign.Transparency{sign.NewRekor(&sign.RekorOptions{BaseURL: o.RekorURL, Timeout: o.Timeout, Retries: 2})},
		},
		Identity: "keyless " + fulcio.identity,
	}, nil
}

// renewingCert hands out one Fulcio certificate until a minute before it
// expires, then asks Fulcio for another.
type renewingCert struct {
	fulcio   sign.CertificateProvider
	mu       sync.Mutex
	der      []byte
	notAfter time.Time
	identity string
}

func (r *renewingCert) GetCertificate(ctx context.Context, kp sign.Keypair, opts *sign.CertificateProviderOptions) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.der != nil && time.Now().Before(r.notAfter.Add(-time.Minute)) {
		return r.der, nil
	}
	// sigstore-go's Fulcio client does not tie its request to ctx (it is
	// bounded by its own timeout): stop waiting for it when ctx ends.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	type result struct {
		der []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		der, err := r.fulcio.GetCertificate(ctx, kp, opts)
		done <- result{der, err}
	}()
	var der []byte
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case res := <-done:
		if res.err != nil {
			return nil, res.err
		}
		der = res.der
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("Fulcio certificate: %w", err)
	}
	r.der, r.notAfter = der, cert.NotAfter
	switch {
	case len(cert.EmailAddresses) > 0:
		r.identity = cert.EmailAddresses[0]
	case len(cert.URIs) > 0:
		r.identity = cert.URIs[0].String()
	}
	return der, nil
}
