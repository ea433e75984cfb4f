package admission

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote/errcode"

	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// check resolves one reference to a digest (once) and verifies that digest
// against the policy with the one library call `verify` makes. A report
// that fails its rule is a decision, not an error; an error means the
// model could not be checked, and the review is denied.
func (w *Webhook) check(ctx context.Context, pol *loadedPolicy, ref *modelRef, creds *pullCreds) (digest.Digest, *referrers.Report, bool, error) {
	var target *oras.Target
	open := func() (*oras.Target, error) {
		if target != nil {
			return target, nil
		}
		t, err := w.openTarget(ctx, ref.Repository, creds)
		if err != nil {
			return nil, err
		}
		target = t
		return t, nil
	}
	var desc ocispec.Descriptor
	if ref.Digest != "" {
		desc.Digest = ref.Digest
	} else {
		tagKey := ref.Repository + ":" + ref.Tag
		if d, ok := w.cache.tag(tagKey); ok && w.opts.TagTTL > 0 {
			desc = d
			w.metrics.cache.WithLabelValues("tag", "hit").Inc()
		} else {
			w.metrics.cache.WithLabelValues("tag", "miss").Inc()
			t, err := open()
			if err != nil {
				return "", nil, false, err
			}
			d, err := oras.Resolve(ctx, t, ref.Tag)
			if err != nil {
				return "", nil, false, w.registryError(ctx, ref, err)
			}
			desc = d
			if w.opts.TagTTL > 0 {
				w.cache.putTag(tagKey, d, time.Now().Add(w.opts.TagTTL))
			}
		}
	}
	key := decisionKey{repository: ref.Repository, digest: desc.Digest, policy: pol.raw}
	if w.opts.CacheTTL > 0 {
		if rep, ok := w.cache.decision(key); ok {
			w.metrics.cache.WithLabelValues("decision", "hit").Inc()
			return desc.Digest, rep, true, nil
		}
		w.metrics.cache.WithLabelValues("decision", "miss").Inc()
	}
	v, err, _ := w.cache.flight.Do(key.String(), func() (any, error) {
		t, err := open()
		if err != nil {
			return nil, err
		}
		d := desc
		if d.Size == 0 || d.MediaType == "" {
			if d, err = oras.Resolve(ctx, t, desc.Digest.String()); err != nil {
				return nil, w.registryError(ctx, ref, err)
			}
			if d.Digest != desc.Digest {
				return nil, fmt.Errorf("registry answered digest %s for %s", d.Digest, desc.Digest)
			}
		}
		return w.verify(ctx, pol, t, ref, d, key)
	})
	if err != nil {
		return desc.Digest, nil, false, err
	}
	return desc.Digest, v.(*referrers.Report), false, nil
}

// verify runs referrers.VerifyModel and caches the report. A pass is
// cached only for as long as it holds: until the end of the TTL when the
// rule's maxAge (SLSA provenance or VSA) is still met then, and never past
// the earliest expiry of a certificate the verification rested on
// (Report.ValidUntil). A pass that would not hold for the whole TTL is not
// cached; a failure is cached for the tag TTL.
func (w *Webhook) verify(ctx context.Context, pol *loadedPolicy, t *oras.Target, ref *modelRef, desc ocispec.Descriptor, key decisionKey) (*referrers.Report, error) {
	now := time.Now()
	ttl := w.opts.CacheTTL
	if ttl > 0 {
		if rule, _ := pol.Match(t.Name); rule != nil && !rule.Reject && hasMaxAge(rule) {
			rep, err := w.verifyAt(ctx, pol, t, desc, now.Add(ttl))
			if err == nil && rep.Passed {
				w.cacheDecision(key, rep, now, ttl)
				return rep, nil
			}
			// It would not hold for the whole TTL: decide as of now, and
			// do not keep a pass.
			ttl = 0
		}
	}
	rep, err := w.verifyAt(ctx, pol, t, desc, now)
	if err != nil {
		return nil, w.registryError(ctx, ref, err)
	}
	if !rep.Passed {
		ttl = min(w.opts.CacheTTL, w.opts.TagTTL)
	}
	w.cacheDecision(key, rep, now, ttl)
	return rep, nil
}

// cacheDecision keeps rep for ttl from now, never past rep.ValidUntil
// (not at all when ttl is not positive or ValidUntil has come).
func (w *Webhook) cacheDecision(key decisionKey, rep *referrers.Report, now time.Time, ttl time.Duration) {
	if ttl <= 0 || w.opts.CacheTTL <= 0 {
		return
	}
	expires := now.Add(ttl)
	if !rep.ValidUntil.IsZero() && rep.ValidUntil.Before(expires) {
		expires = rep.ValidUntil
	}
	if !expires.After(time.Now()) {
		return
	}
	w.cache.putDecision(key, rep, expires)
}

func (w *Webhook) verifyAt(ctx context.Context, pol *loadedPolicy, t *oras.Target, desc ocispec.Descriptor, at time.Time) (*referrers.Report, error) {
	start := time.Now()
	rep, err := referrers.VerifyModel(ctx, t, t.Name, desc, pol.Policy.Policy, referrers.VerifyOptions{Now: at})
	w.metrics.verifyLatency.Observe(time.Since(start).Seconds())
	var pe *referrers.PolicyError
	if errors.As(err, &pe) {
		return pe.Report, nil
	}
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// hasMaxAge reports whether a pass under r can expire with time: a SLSA
// provenance maxAge, or a VSA (whose maxAge is required).
func hasMaxAge(r *referrers.Rule) bool {
	for _, a := range r.Attestations {
		if a.SLSA != nil && a.SLSA.MaxAge != "" || a.VSA != nil {
			return true
		}
	}
	return false
}

// registryError says why a model could not be checked. Anything that
// looks like the registry not answering in the budget (a deadline, a
// network error, a 5xx) is "registry unreachable".
func (w *Webhook) registryError(ctx context.Context, ref *modelRef, err error) error {
	w.metrics.registryErrors.Inc()
	var ne net.Error
	var ec *errcode.ErrorResponse
	switch {
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		return fmt.Errorf("%w: %s: no answer within the %s review budget", errUnreachable, hostOf(ref.Repository), w.opts.Timeout)
	case errors.As(err, &ec) && ec.StatusCode >= 500:
		return fmt.Errorf("%w: %s: %v", errUnreachable, hostOf(ref.Repository), err)
	case errors.As(err, &ne):
		return fmt.Errorf("%w: %s: %v", errUnreachable, hostOf(ref.Repository), err)
	case errors.Is(err, errdef.ErrNotFound) || errors.As(err, &ec) && ec.StatusCode == http.StatusNotFound:
		return fmt.Errorf("not found in the registry: %v", err)
	case errors.As(err, &ec) && (ec.StatusCode == http.StatusUnauthorized || ec.StatusCode == http.StatusForbidden):
		return fmt.Errorf("the registry refused the webhook's credentials (pull secrets of the pod and its service account, then the webhook's own): %v", err)
	}
	return fmt.Errorf("cannot verify: %w", err)
}

func hostOf(repository string) string {
	h, _, _ := strings.Cut(repository, "/")
	return h
}
