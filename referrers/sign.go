package referrers

import (
	"context"
	"encoding/json"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	orasgo "oras.land/oras-go/v2"
)

// Sign signs the model manifest subject (a digest resolved once by the
// caller) with cosign's signature predicate and stores the bundle as a
// referrer. Only the digest is signed: no blob is fetched.
func Sign(ctx context.Context, dst orasgo.Target, subject ocispec.Descriptor, s *Signer, opts AttachOptions) (ocispec.Descriptor, error) {
	return Attest(ctx, dst, subject, s, PredicateCosignSign, json.RawMessage("{}"), opts)
}

// Attest signs an in-toto statement about subject with the given predicate
// and stores it as a referrer. SLSA provenance is validated first; a
// predicate that fails validation is refused and nothing is pushed.
func Attest(ctx context.Context, dst orasgo.Target, subject ocispec.Descriptor, s *Signer, predicateType string, predicate json.RawMessage, opts AttachOptions) (ocispec.Descriptor, error) {
	predicateType, err := ResolvePredicateType(predicateType)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("%w: %w", ErrPredicate, err)
	}
	if predicateType == PredicateSLSAProvenance {
		if err := ValidateProvenance(predicate); err != nil {
			return ocispec.Descriptor{}, err
		}
	}
	st, err := NewStatement(subject.Digest, "", predicateType, predicate)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	b, err := s.SignStatement(ctx, st)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc, err := Attach(ctx, dst, subject, b, predicateType, opts)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("%s: %w", predicateType, err)
	}
	return desc, nil
}
