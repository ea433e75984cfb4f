package referrers

import (
	"context"
	"fmt"

	"github.com/sigstore/sigstore-go/pkg/sign"
	"google.golang.org/protobuf/encoding/protojson"
)

// SignBlob signs arbitrary bytes into a Sigstore bundle v0.3 holding a
// message signature over their SHA-256, the shape `cosign sign-blob
// --bundle` writes and `cosign verify-blob --bundle` checks.
func (s *Signer) SignBlob(ctx context.Context, data []byte) ([]byte, error) {
	opts := s.opts
	opts.Context = ctx
	b, err := sign.Bundle(&sign.PlainData{Data: data}, s.keypair, opts)
	if err != nil {
		return nil, fmt.Errorf("sign blob: %w", err)
	}
	return protojson.Marshal(b)
}

// Statement is the verified statement of a referrer whose verdict is
// "verified" (nil otherwise): what its trusted signer attested.
func (f *Finding) Statement() *Statement { return f.statement }
