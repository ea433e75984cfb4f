package audit

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/modelattest/modelattest/events"
	"github.com/modelattest/modelattest/referrers"
)

// ParseWindow reads --warn-expiry: a number of days ("30d") or a Go
// duration ("720h"). It must be positive.
func ParseWindow(s string) (time.Duration, error) {
	var d time.Duration
	var err error
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var days int
		days, err = strconv.Atoi(n)
		d = time.Duration(days) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--warn-expiry %q: want a positive number of days (30d) or a duration (720h)", s)
	}
	return d, nil
}

// Expiring lists, per trust anchor of the policy, what expires before
// now+window (already expired included), one reason each, e.g. `root
// certificate "CN=Acme Root" (serial 1) expires 2027-01-01T00:00:00Z`.
// The reason carries the date, not "in N days", so it stays the same from
// one run to the next and is announced once.
func Expiring(p *referrers.Policy, now time.Time, window time.Duration) map[string][]string {
	out := map[string][]string{}
	for _, e := range p.AnchorExpiries() {
		if !e.NotAfter.Before(now.Add(window)) {
			continue
		}
		verb := "expires"
		if !e.NotAfter.After(now) {
			verb = "expired"
		}
		out[e.Anchor] = append(out[e.Anchor], fmt.Sprintf("%s %s %s", e.What, verb, e.NotAfter.UTC().Format(time.RFC3339)))
	}
	return out
}

// ExpiryChanges returns one event per trust anchor with a reason that was
// not announced before (in prev.Expiring), listing all of that anchor's
// reasons. Unlike model changes, the first run (prev nil) announces: an
// anchor about to expire is worth knowing when the watch starts. The
// caller keeps expiring in the state (State.Expiring), so a restart does
// not re-announce.
func ExpiryChanges(expiring map[string][]string, prev *State, o Options, runID string, at time.Time) []events.Event {
	names := make([]string, 0, len(expiring))
	for a := range expiring {
		names = append(names, a)
	}
	sort.Strings(names)
	var out []events.Event
	for _, a := range names {
		known := map[string]bool{}
		if prev != nil {
			for _, r := range prev.Expiring[a] {
				known[r] = true
			}
		}
		fresh := false
		for _, r := range expiring[a] {
			fresh = fresh || !known[r]
		}
		if !fresh {
			continue
		}
		var pd = o.Policy.Digest
		out = append(out, events.FromAnchorExpiry(a, pd, expiring[a],
			events.Options{Face: events.FaceAudit, CorrelationID: runID, Version: o.Version, Time: at}))
	}
	return out
}
