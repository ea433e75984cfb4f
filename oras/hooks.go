package oras

import (
	"context"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	orasgo "oras.land/oras-go/v2"
)

// lockedHooks serialises the copy hooks, which share the trackers map.
func lockedHooks(g orasgo.CopyGraphOptions) orasgo.CopyGraphOptions {
	var mu sync.Mutex
	wrap := func(f func(context.Context, ocispec.Descriptor) error) func(context.Context, ocispec.Descriptor) error {
		return func(ctx context.Context, d ocispec.Descriptor) error {
			mu.Lock()
			defer mu.Unlock()
			return f(ctx, d)
		}
	}
	g.PreCopy, g.PostCopy, g.OnCopySkipped, g.OnMounted = wrap(g.PreCopy), wrap(g.PostCopy), wrap(g.OnCopySkipped), wrap(g.OnMounted)
	return g
}
