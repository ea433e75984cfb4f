package referrers

import (
	"context"
	"fmt"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"google.golang.org/protobuf/encoding/protojson"
)

// SignStatement signs an in-toto statement into a Sigstore bundle v0.3
// (DSSE, payload type application/vnd.in-toto+json) and returns its JSON.
func (s *Signer) SignStatement(ctx context.Context, statement []byte) ([]byte, error) {
	opts := s.opts
	opts.Context = ctx
	b, err := sign.Bundle(&sign.DSSEData{Data: statement, PayloadType: PayloadTypeInToto}, s.keypair, opts)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return protojson.Marshal(b)
}

// MaxBundleBytes bounds a bundle read from a registry.
const MaxBundleBytes = 1 << 20

// ParseBundle reads a Sigstore bundle (v0.1 to v0.3; X.509 chains allowed).
func ParseBundle(b []byte) (*bundle.Bundle, error) {
	if len(b) > MaxBundleBytes {
		return nil, fmt.Errorf("bundle: %d bytes is over the %d-byte limit", len(b), MaxBundleBytes)
	}
	var pb protobundle.Bundle
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, &pb); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	bb, err := bundle.NewBundle(&pb, bundle.AllowCertificateChain())
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	return bb, nil
}
