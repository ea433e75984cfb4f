package referrers

import (
	"context"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"

	"github.com/modelattest/modelattest/oras"
)

// ErrGraphRefused is wrapped by the error Walk returns for a referrer graph
// that breaks its limits or lies about its shape (a cycle, a manifest under
// two parents). Verification fails on it; it does not merely stop early.
var ErrGraphRefused = errors.New("referrer graph refused")

// Node is one manifest reached by Walk. Its descriptor is the one the
// registry listed: it only locates the manifest, which a caller re-reads
// (FetchReferrer) before trusting anything in it.
type Node struct {
	ocispec.Descriptor
	// Parent is the node that listed this one (nil for the root).
	Parent *Node `json:"-"`
	// Depth is 0 for the root, 1 for its referrers, and so on.
	Depth int `json:"-"`
	// Referrers are the nodes listed under this one that the walk followed.
	Referrers []*Node `json:"referrers,omitempty"`
	// Notation, when a caller fills it (discover), is who a Notary Project
	// signature claims signed it: not verified.
	Notation *NotationClaim `json:"notation,omitempty"`
}

// WalkOptions are the optional settings of Walk. The zero value follows
// every artifact type within the default Limits.
type WalkOptions struct {
	// Limits bound depth, fan-out and the whole graph (zero fields: the
	// defaults of Limits).
	Limits Limits
	// ArtifactType, when set, keeps only listed referrers of this type (as
	// the listing reports it: a filter for display, never for trust).
	ArtifactType string
}

// WalkFunc is called for every referrer Walk reaches, breadth-first, each
// parent's referrers in listing order. It returns whether the walk should
// list n's own referrers; an error stops the walk and is returned as is.
type WalkFunc func(ctx context.Context, n *Node) (descend bool, err error)

// Walk lists the referrers of root, and theirs, breadth-first: the one
// walk of a referrer graph, used to verify a model and to show its graph.
// It keeps a visited set and bounds depth, per-manifest fan-out and the
// node count; a graph over those bounds, or one that lists a manifest
// twice (a cycle), is refused with ErrGraphRefused. A referrer listed
// twice under the same parent is met once. Only a listing that is not
// found counts as no referrers; any other listing error, at any depth, is
// returned. fn may be nil. Walk returns the root and the tree below it.
func Walk(ctx context.Context, src content.ReadOnlyGraphStorage, root ocispec.Descriptor, opts WalkOptions, fn WalkFunc) (*Node, error) {
	lim := opts.Limits.withDefaults()
	top := &Node{Descriptor: root}
	visited := map[digest.Digest]bool{root.Digest: true}
	level := []*Node{top}
	nodes := 0
	for depth := 1; depth <= lim.MaxDepth && len(level) > 0; depth++ {
		var next []*Node
		for _, parent := range level {
			refs, err := oras.Referrers(ctx, src, parent.Descriptor, opts.ArtifactType)
			if errors.Is(err, errdef.ErrNotFound) {
				continue // nothing refers to it
			}
			if err != nil {
				// A listing that failed hides what it would have listed: a
				// deeper failure is as much an error as the model's own.
				return top, err
			}
			if len(refs) > lim.MaxReferrers {
				return top, fmt.Errorf("%w: %s has %d referrers listed, over the limit of %d", ErrGraphRefused, parent.Digest, len(refs), lim.MaxReferrers)
			}
			listed := map[digest.Digest]bool{}
			for _, d := range refs {
				if listed[d.Digest] {
					continue // the same referrer listed twice under one parent
				}
				listed[d.Digest] = true
				if visited[d.Digest] {
					// A manifest names one subject by a digest that covers
					// it: a true graph has no cycle and no manifest under two
					// parents. The listing is lying.
					return top, fmt.Errorf("%w: %s is listed as a referrer of %s but was already reached (a cycle)", ErrGraphRefused, d.Digest, parent.Digest)
				}
				visited[d.Digest] = true
				if nodes++; nodes > lim.MaxNodes {
					return top, fmt.Errorf("%w: more than %d referrers in the graph", ErrGraphRefused, lim.MaxNodes)
				}
				n := &Node{Descriptor: d, Parent: parent, Depth: depth}
				parent.Referrers = append(parent.Referrers, n)
				descend := true
				if fn != nil {
					if descend, err = fn(ctx, n); err != nil {
						return top, err
					}
				}
				if descend {
					next = append(next, n)
				}
			}
		}
		level = next
	}
	return top, nil
}
