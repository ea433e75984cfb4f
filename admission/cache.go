package admission

import (
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/singleflight"

	"github.com/modelattest/modelattest/referrers"
)

// decisionKey is what a cached decision depends on: the repository picks
// the rule, the digest is what was verified, the policy digest is which
// rules applied.
type decisionKey struct {
	repository string
	digest     digest.Digest
	policy     digest.Digest
}

func (k decisionKey) String() string {
	return k.repository + "@" + k.digest.String() + " " + k.policy.String()
}

type entry[V any] struct {
	v       V
	expires time.Time
}

// maxEntries bounds each map: past it, expired entries are swept and, if
// still full, everything is dropped (a cache miss only costs a
// verification).
const maxEntries = 10000

// cache holds verified decisions and tag digests, each with its expiry.
type cache struct {
	mu        sync.Mutex
	decisions map[decisionKey]entry[*referrers.Report]
	tags      map[string]entry[ocispec.Descriptor]
	flight    singleflight.Group
}

func newCache() *cache {
	return &cache{decisions: map[decisionKey]entry[*referrers.Report]{}, tags: map[string]entry[ocispec.Descriptor]{}}
}

func (c *cache) decision(k decisionKey) (*referrers.Report, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.decisions[k]
	if !ok || time.Now().After(e.expires) {
		return nil, false
	}
	return e.v, true
}

func (c *cache) putDecision(k decisionKey, r *referrers.Report, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.decisions) >= maxEntries {
		sweep(c.decisions)
	}
	c.decisions[k] = entry[*referrers.Report]{r, expires}
}

func (c *cache) tag(k string) (ocispec.Descriptor, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.tags[k]
	if !ok || time.Now().After(e.expires) {
		return ocispec.Descriptor{}, false
	}
	return e.v, true
}

func (c *cache) putTag(k string, d ocispec.Descriptor, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.tags) >= maxEntries {
		sweep(c.tags)
	}
	c.tags[k] = entry[ocispec.Descriptor]{d, expires}
}

func sweep[K comparable, V any](m map[K]entry[V]) {
	now := time.Now()
	for k, e := range m {
		if now.After(e.expires) {
			delete(m, k)
		}
	}
	if len(m) >= maxEntries {
		clear(m)
	}
}
