package referrers

import (
	"context"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	orasgo "oras.land/oras-go/v2"

	"github.com/modelattest/modelattest/oras"
)

// AttachOptions are the optional settings of Attach. The zero value stamps
// the referrer with the current time.
type AttachOptions struct {
	// Created is the referrer's creation time (zero: now).
	Created time.Time
	// Annotations are added to the referrer manifest.
	Annotations map[string]string
}

// Attach stores a bundle as a referrer of subject, in cosign v3's layout:
// artifactType and layer media type application/vnd.dev.sigstore.bundle.v0.3+json,
// the empty config, and the dev.sigstore.bundle.* annotations. On a registry
// without the Referrers API, oras-go maintains the sha256-<hex> tag index.
func Attach(ctx context.Context, dst orasgo.Target, subject ocispec.Descriptor, bundleJSON []byte, predicateType string, opts AttachOptions) (ocispec.Descriptor, error) {
	if opts.Created.IsZero() {
		opts.Created = time.Now()
	}
	layer := ocispec.Descriptor{MediaType: BundleMediaType, Digest: digest.FromBytes(bundleJSON), Size: int64(len(bundleJSON))}
	if err := oras.PushBytes(ctx, dst, layer, bundleJSON); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("push bundle: %w", err)
	}
	ann := map[string]string{
		AnnotationBundleContent: "dsse-envelope",
		AnnotationPredicateType: predicateType,
		AnnotationCreated:       opts.Created.UTC().Format(time.RFC3339),
	}
	for k, v := range opts.Annotations {
		ann[k] = v
	}
	subj := ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	desc, err := orasgo.PackManifest(ctx, dst, orasgo.PackManifestVersion1_1, BundleMediaType, orasgo.PackManifestOptions{
		Subject:             &subj,
		Layers:              []ocispec.Descriptor{layer},
		ManifestAnnotations: ann,
	})
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("push referrer: %w", err)
	}
	return desc, nil
}
