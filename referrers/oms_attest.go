package referrers

import (
	"context"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	orasgo "oras.land/oras-go/v2"

	"github.com/modelattest/modelattest/oras"
)

// AttestModelSigning makes the OpenSSF model-signing statement of the
// model subject from its manifest alone (no file is fetched), signs it and
// stores it as a referrer. name is the statement's subject name.
func AttestModelSigning(ctx context.Context, dst orasgo.Target, subject ocispec.Descriptor, s *Signer, name string, opts AttachOptions) (ocispec.Descriptor, error) {
	m, _, err := oras.FetchManifest(ctx, dst, subject)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	st, _, err := OMSStatement(*m, name)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return attachOMS(ctx, dst, subject, s, st, opts)
}

// attachOMS signs a model-signing statement and stores it as a referrer
// of subject.
func attachOMS(ctx context.Context, dst orasgo.Target, subject ocispec.Descriptor, s *Signer, statement []byte, opts AttachOptions) (ocispec.Descriptor, error) {
	b, err := s.SignStatement(ctx, statement)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc, err := Attach(ctx, dst, subject, b, PredicateModelSigning, opts)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("model signing: %w", err)
	}
	return desc, nil
}
