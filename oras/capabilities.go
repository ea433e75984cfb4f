package oras

import (
	"context"
	"io"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
)

// Target keeps the capabilities of the store it wraps, so that code taking
// the oras-go interfaces finds them on it as on the store itself.
var (
	_ registry.ReferrerLister = (*Target)(nil)
	_ RangeFetcher            = (*Target)(nil)
)

// Referrers lists the manifests whose subject is desc, calling fn with
// each page: through the store's own listing (a registry's Referrers API,
// with its tag-schema fallback) when it has one, else from the store's
// predecessors (an OCI layout). It makes Target an oras-go
// registry.ReferrerLister, so registry.Referrers uses it directly.
func (t *Target) Referrers(ctx context.Context, desc ocispec.Descriptor, artifactType string, fn func([]ocispec.Descriptor) error) error {
	if rl, ok := t.GraphTarget.(registry.ReferrerLister); ok {
		return rl.Referrers(ctx, desc, artifactType, fn)
	}
	refs, err := registry.Referrers(ctx, t.GraphTarget, desc, artifactType)
	if err != nil {
		return err
	}
	return fn(refs)
}

// RangeFetcher is a store that serves byte ranges of a blob (a registry
// that honours Range requests). Pull fetches a big blob from one in
// parallel parts; the bytes are still hashed in order and checked.
type RangeFetcher interface {
	// FetchRange returns bytes [from, to] of the blob desc, or an error
	// wrapping ErrNoRanges when the store does not serve ranges.
	FetchRange(ctx context.Context, desc ocispec.Descriptor, from, to int64) (io.ReadCloser, error)
}

// ErrNoRanges says a store does not serve byte ranges: fetch in one stream.
var ErrNoRanges = errNoRanges

// FetchRange serves byte ranges when the wrapped store is a registry.
func (t *Target) FetchRange(ctx context.Context, desc ocispec.Descriptor, from, to int64) (io.ReadCloser, error) {
	if rf, ok := rangeFetcherOf(t.GraphTarget); ok {
		return rf.FetchRange(ctx, desc, from, to)
	}
	return nil, errNoRanges
}

// rangeFetcherOf finds the range capability of src: its own, or that of an
// oras-go remote repository used directly.
func rangeFetcherOf(src content.Fetcher) (RangeFetcher, bool) {
	switch s := src.(type) {
	case RangeFetcher:
		return s, true
	case *remote.Repository:
		return repoRanges{s}, true
	}
	return nil, false
}

// blobStreamer is a store that takes a blob in a chunked upload, hashed
// while it streams, its digest given only in the closing request: a big
// file is read once. A registry is one; an OCI layout is not.
type blobStreamer interface {
	streamBlob(ctx context.Context, p string, size int64, t Tracker) (digest.Digest, error)
}

// streamerOf finds the streaming capability of dst: an oras-go remote
// repository used directly, or a Target wrapping one.
func streamerOf(dst content.Storage) (blobStreamer, bool) {
	switch s := dst.(type) {
	case *Target:
		return streamerOf(s.GraphTarget)
	case *remote.Repository:
		return repoStreamer{s}, true
	case blobStreamer:
		return s, true
	}
	return nil, false
}

// repoStreamer streams uploads into an oras-go remote repository.
type repoStreamer struct{ repo *remote.Repository }

func (r repoStreamer) streamBlob(ctx context.Context, p string, size int64, t Tracker) (digest.Digest, error) {
	return streamUpload(ctx, r.repo, p, size, t)
}

// repoRanges serves byte ranges of an oras-go remote repository's blobs.
type repoRanges struct{ repo *remote.Repository }

func (r repoRanges) FetchRange(ctx context.Context, desc ocispec.Descriptor, from, to int64) (io.ReadCloser, error) {
	return getRange(ctx, r.repo, desc, from, to)
}
