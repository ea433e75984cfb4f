package oras

import (
	"context"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	orasgo "oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
)

// MaxReferrerDepth bounds how many levels of referrers copy follows
// (signatures on attestations on a model is three).
const MaxReferrerDepth = 8

// CopyOptions are the optional settings of Copy. The zero value copies the
// model alone, eight blobs at once.
type CopyOptions struct {
	// Referrers copies the referrers (signatures, attestations) too, and
	// theirs, up to MaxReferrerDepth levels.
	Referrers bool
	// Concurrency is the number of parallel blob copies.
	Concurrency int
	// Progress reports each blob copied.
	Progress Progress
}

// Resolve turns a tag or digest into the manifest descriptor, once. Every
// later step uses the returned digest, so a tag moved mid-way cannot swap
// the model.
func Resolve(ctx context.Context, t orasgo.ReadOnlyTarget, ref string) (ocispec.Descriptor, error) {
	if ref == "" {
		return ocispec.Descriptor{}, fmt.Errorf("no tag or digest given")
	}
	desc, err := t.Resolve(ctx, ref)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("resolve %q: %w", ref, err)
	}
	if desc.Size > MaxManifestBytes {
		return ocispec.Descriptor{}, fmt.Errorf("resolve %q: manifest of %d bytes is over the %d-byte limit", ref, desc.Size, MaxManifestBytes)
	}
	return desc, nil
}

// Copy copies the manifest desc (and, if asked, its referrers) from src to
// dst, and tags it there with dstRef when dstRef is not empty.
func Copy(ctx context.Context, src orasgo.ReadOnlyGraphTarget, desc ocispec.Descriptor, dst orasgo.Target, dstRef string, opts CopyOptions) error {
	g := orasgo.CopyGraphOptions{Concurrency: concurrency(opts.Concurrency), MaxMetadataBytes: MaxManifestBytes}
	if opts.Progress != nil {
		var trackers = map[string]Tracker{}
		g.PreCopy = func(_ context.Context, d ocispec.Descriptor) error {
			trackers[d.Digest.String()] = opts.Progress.Track(shortName(d), d.Size)
			return nil
		}
		g.PostCopy = func(_ context.Context, d ocispec.Descriptor) error {
			if t, ok := trackers[d.Digest.String()]; ok {
				t.Add(d.Size)
				t.Done("copied", nil)
			}
			return nil
		}
		g.OnCopySkipped = func(_ context.Context, d ocispec.Descriptor) error {
			t := opts.Progress.Track(shortName(d), d.Size)
			t.Add(d.Size)
			t.Done("exists", nil)
			return nil
		}
		g.OnMounted = func(_ context.Context, d ocispec.Descriptor) error {
			opts.Progress.Track(shortName(d), d.Size).Done(string(BlobMounted), nil)
			return nil
		}
		// oras-go calls the hooks from several goroutines.
		g = lockedHooks(g)
	}
	to := content.Storage(dst)
	if repo, from, ok := sameRegistry(src, dst); ok {
		// Blobs are mounted from the source repository, not downloaded and
		// sent again; a registry that answers 202 gets them copied.
		to = repo
		g.MountFrom = func(context.Context, ocispec.Descriptor) ([]string, error) { return []string{from}, nil }
	}
	var err error
	if opts.Referrers {
		err = orasgo.ExtendedCopyGraph(ctx, src, to, desc, orasgo.ExtendedCopyGraphOptions{
			CopyGraphOptions: g,
			Depth:            MaxReferrerDepth,
		})
	} else {
		err = orasgo.CopyGraph(ctx, src, to, desc, g)
	}
	if err != nil {
		return fmt.Errorf("copy %s: %w", desc.Digest, err)
	}
	if dstRef != "" {
		if err := dst.Tag(ctx, desc, dstRef); err != nil {
			return fmt.Errorf("tag %q: %w", dstRef, err)
		}
	}
	return nil
}

// sameRegistry reports whether src and dst are two repositories of one
// registry, and returns dst's repository (which can mount) and src's name.
func sameRegistry(src, dst any) (*remote.Repository, string, bool) {
	_, from, ok := remoteAddress(src)
	if !ok {
		return nil, "", false
	}
	repo, to, ok := remoteAddress(dst)
	if !ok || from.Host != to.Host || from.Repository == to.Repository {
		return nil, "", false
	}
	return repo, from.Repository, true
}

func shortName(d ocispec.Descriptor) string {
	if t := d.Annotations[ocispec.AnnotationTitle]; t != "" {
		return t
	}
	return d.Digest.Encoded()[:12] + " " + d.MediaType
}

// Referrers lists the manifests whose subject is desc, filtered by
// artifactType when it is not empty: the Referrers API on a registry that
// has it, the sha256-<hex> tag schema on one that does not, the layout's
// index on an OCI layout. What it returns only locates candidates: a
// verifier must fetch each manifest and check it.
func Referrers(ctx context.Context, t content.ReadOnlyGraphStorage, desc ocispec.Descriptor, artifactType string) ([]ocispec.Descriptor, error) {
	refs, err := registry.Referrers(ctx, t, desc, artifactType)
	if err != nil {
		return nil, fmt.Errorf("referrers of %s: %w", desc.Digest, err)
	}
	return refs, nil
}
