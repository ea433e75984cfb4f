package referrers

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"

	"github.com/modelattest/modelattest/oras"
)

// Referrer is a bundle referrer as read from its own manifest: nothing in
// it comes from a referrers index, which only located it.
type Referrer struct {
	// Descriptor is the referrer manifest's descriptor.
	Descriptor ocispec.Descriptor
	// Manifest is the referrer manifest, digest-checked.
	Manifest ocispec.Manifest
	// Bundle is the bundle layer's bytes, digest-checked.
	Bundle []byte
	// PredicateType is the annotation (a hint; the signed statement decides).
	PredicateType string
	// Notation, for a Notary Project signature, is its envelope; Bundle
	// is then empty.
	Notation *NotationEnvelope
}

// IsBundleReferrer reports whether a referrer manifest holds a Sigstore
// bundle, reading its own artifactType (or, for writers that leave it out,
// its config media type).
func IsBundleReferrer(m ocispec.Manifest) bool {
	return m.ArtifactType == BundleMediaType || (m.ArtifactType == "" && m.Config.MediaType == BundleMediaType)
}

// FetchReferrer reads the referrer manifest desc from src and checks it:
// its bytes match desc, its subject is subject, it holds exactly one
// bundle layer of at most MaxBundleBytes, whose bytes match their
// descriptor. The artifactType a registry listed is never trusted.
func FetchReferrer(ctx context.Context, src content.Fetcher, desc ocispec.Descriptor, subject digest.Digest) (*Referrer, error) {
	if desc.MediaType != ocispec.MediaTypeImageManifest {
		return nil, fmt.Errorf("referrer %s: media type %q is not an image manifest", desc.Digest, desc.MediaType)
	}
	m, _, err := oras.FetchManifest(ctx, src, desc)
	if err != nil {
		return nil, fmt.Errorf("referrer %s: %w", desc.Digest, err)
	}
	if m.Subject == nil || m.Subject.Digest != subject {
		got := "none"
		if m.Subject != nil {
			got = m.Subject.Digest.String()
		}
		return nil, fmt.Errorf("referrer %s: its subject is %s, not %s", desc.Digest, got, subject)
	}
	if IsNotationReferrer(*m) {
		env, err := fetchNotationEnvelope(ctx, src, desc, m)
		if err != nil {
			return nil, err
		}
		return &Referrer{Descriptor: desc, Manifest: *m, Notation: env}, nil
	}
	if !IsBundleReferrer(*m) {
		return nil, fmt.Errorf("referrer %s: artifactType %q is not a Sigstore bundle", desc.Digest, m.ArtifactType)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != BundleMediaType {
		return nil, fmt.Errorf("referrer %s: want exactly one %s layer, have %d layers", desc.Digest, BundleMediaType, len(m.Layers))
	}
	l := m.Layers[0]
	if l.Size > MaxBundleBytes {
		return nil, fmt.Errorf("referrer %s: bundle of %d bytes is over the %d-byte limit", desc.Digest, l.Size, MaxBundleBytes)
	}
	b, err := content.FetchAll(ctx, src, l)
	if err != nil {
		return nil, fmt.Errorf("referrer %s: bundle: %w", desc.Digest, err)
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("referrer %s: bundle is not JSON", desc.Digest)
	}
	return &Referrer{Descriptor: desc, Manifest: *m, Bundle: b, PredicateType: m.Annotations[AnnotationPredicateType]}, nil
}

// MaxReferrers bounds how many referrers of one manifest are read.
const MaxReferrers = 1000

// FindBundles lists the bundle referrers of subject whose predicateType
// annotation is predicateType, each read and checked by FetchReferrer. The
// listing's artifactType is not used to filter: registries report it
// wrongly. Nothing here is verified: a caller verifies each bundle.
func FindBundles(ctx context.Context, src content.ReadOnlyGraphStorage, subject ocispec.Descriptor, predicateType string) ([]*Referrer, error) {
	descs, err := oras.Referrers(ctx, src, subject, "")
	if err != nil {
		return nil, err
	}
	if len(descs) > MaxReferrers {
		return nil, fmt.Errorf("referrers of %s: %d listed, more than the %d read", subject.Digest, len(descs), MaxReferrers)
	}
	var out []*Referrer
	for _, d := range descs {
		if d.MediaType != ocispec.MediaTypeImageManifest {
			continue
		}
		r, err := FetchReferrer(ctx, src, d, subject.Digest)
		if err != nil {
			continue // not a bundle referrer, or a broken one: not what we look for
		}
		if r.PredicateType == predicateType {
			out = append(out, r)
		}
	}
	return out, nil
}
