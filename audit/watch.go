package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/modelattest/modelattest/events"
	"github.com/modelattest/modelattest/referrers"
)

// State is what --watch remembers between runs (--state FILE): every tag's
// digest and every model's last report. A restart compares against it, so
// nothing is announced twice.
type State struct {
	Version string `json:"version"`
	// Tags maps repository → tag → digest.
	Tags map[string]map[string]digest.Digest `json:"tags"`
	// Models maps repository@digest → its last report.
	Models map[string]*referrers.Report `json:"models"`
	// Expiring maps a trust anchor → what of it expires within the
	// --warn-expiry window, as already announced (Expiring's reasons).
	Expiring map[string][]string `json:"expiring,omitempty"`
}

// StateVersion names the shape of a state file.
const StateVersion = "modelattest.audit.state/v1"

// LoadState reads a state file; a missing file is no state (nil, nil).
func LoadState(path string) (*State, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil || s.Version != StateVersion {
		return nil, fmt.Errorf("state %s: not a %s file", path, StateVersion)
	}
	return &s, nil
}

// Save writes the state atomically (a new file renamed over the old), so
// an interrupted save never leaves half a state.
func (s *State) Save(path string) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("state: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return os.Rename(f.Name(), path)
}

// StateOf is the state a run leaves: models that could not be verified
// keep their previous report, so an outage is not taken for a change.
func StateOf(rep *Report, prev *State) *State {
	s := &State{Version: StateVersion, Tags: map[string]map[string]digest.Digest{}, Models: map[string]*referrers.Report{}}
	for _, m := range rep.Models {
		if s.Tags[m.Repository] == nil {
			s.Tags[m.Repository] = map[string]digest.Digest{}
		}
		for _, tag := range m.Tags {
			s.Tags[m.Repository][tag] = m.Digest
		}
		k := reference(m)
		switch {
		case m.report != nil:
			s.Models[k] = m.report
		case prev != nil && prev.Models[k] != nil:
			s.Models[k] = prev.Models[k]
		}
	}
	return s
}

// Changes compares a run with the previous state and returns one event per
// model that changed, listing every reason: a tag added, moved or deleted,
// a referrer added or removed, the verdict changed. A tag that moved is
// reported on the model it moved to. A model whose last tag was deleted
// gets a Close event. prev nil (the first run) gives nothing: the first
// run is the baseline.
func Changes(rep *Report, prev *State, o Options) []events.Event {
	if prev == nil {
		return nil
	}
	reasons := map[string][]string{}
	reportOf := map[string]*referrers.Report{}
	current := map[string]bool{}
	for _, m := range rep.Models {
		k := reference(m)
		current[k] = true
		reportOf[k] = m.report
		old := prev.Tags[m.Repository]
		for _, tag := range m.Tags {
			switch was, ok := old[tag]; {
			case !ok:
				reasons[k] = append(reasons[k], fmt.Sprintf("tag %s added", tag))
			case was != m.Digest:
				reasons[k] = append(reasons[k], fmt.Sprintf("tag %s moved from %s to %s", tag, was, m.Digest))
			}
		}
		before := prev.Models[k]
		if before == nil || m.report == nil {
			continue
		}
		reasons[k] = append(reasons[k], referrerChanges(before, m.report)...)
		if before.Passed != m.report.Passed {
			reasons[k] = append(reasons[k], fmt.Sprintf("verdict changed from %s to %s", verdictWord(before.Passed), verdictWord(m.report.Passed)))
		}
	}
	// Deleted tags: on the model they named, when it is still here; a
	// model with no tag left is closed.
	closed := map[string]bool{}
	for repo, tags := range prev.Tags {
		for tag, d := range tags {
			if _, still := tagOf(rep, repo, tag); still {
				continue
			}
			k := repo + "@" + d.String()
			reasons[k] = append(reasons[k], fmt.Sprintf("tag %s deleted (it named %s)", tag, d))
			if !current[k] {
				closed[k] = true
				reportOf[k] = prev.Models[k]
			}
		}
	}
	keys := make([]string, 0, len(reasons))
	for k, r := range reasons {
		if len(r) > 0 {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var out []events.Event
	for _, k := range keys {
		sort.Strings(reasons[k])
		eo := events.Options{Face: events.FaceAudit, Reference: k, CorrelationID: rep.RunID, Activity: events.ActivityUpdate,
			Changes: reasons[k], Version: o.Version, Time: rep.FinishedAt}
		if closed[k] {
			eo.Activity = events.ActivityClose
		}
		r := reportOf[k]
		if r == nil {
			repo, d, _ := cutRef(k)
			out = append(out, events.FromError(repo, d, errors.New("the model could not be verified"), eo))
			continue
		}
		out = append(out, events.FromReport(r, eo))
	}
	return out
}

func cutRef(k string) (string, digest.Digest, bool) {
	for i := len(k) - 1; i >= 0; i-- {
		if k[i] == '@' {
			return k[:i], digest.Digest(k[i+1:]), true
		}
	}
	return k, "", false
}

func tagOf(rep *Report, repo, tag string) (digest.Digest, bool) {
	for _, m := range rep.Models {
		if m.Repository != repo {
			continue
		}
		for _, t := range m.Tags {
			if t == tag {
				return m.Digest, true
			}
		}
	}
	return "", false
}

func verdictWord(passed bool) string {
	if passed {
		return "pass"
	}
	return "fail"
}

// referrerChanges names referrers added and removed between two reports.
func referrerChanges(before, after *referrers.Report) []string {
	was := map[digest.Digest]referrers.Finding{}
	for _, f := range before.Referrers {
		was[f.Digest] = f
	}
	now := map[digest.Digest]bool{}
	var out []string
	for _, f := range after.Referrers {
		now[f.Digest] = true
		if _, ok := was[f.Digest]; !ok {
			out = append(out, fmt.Sprintf("referrer %s added (%s, %s)", f.Digest, describe(f), f.Verdict))
		}
	}
	for d, f := range was {
		if !now[d] {
			out = append(out, fmt.Sprintf("referrer %s removed (%s)", d, describe(f)))
		}
	}
	return out
}

func describe(f referrers.Finding) string {
	if f.PredicateType != "" {
		return f.PredicateType
	}
	if f.ArtifactType != "" {
		return f.ArtifactType
	}
	return "unknown type"
}

// Watch runs the audit every interval until ctx ends, emitting through
// emit only what changed since the state file (created on the first run,
// which is the baseline). With warnExpiry > 0 it also emits one event per
// trust anchor when something of it comes to expire within warnExpiry
// (ExpiryChanges; zero: anchors are not watched). It returns ctx's error
// when stopped, or the first error that kept a run from completing.
func Watch(ctx context.Context, targets []string, o Options, statePath string, interval, warnExpiry time.Duration, emit func(events.Event), after func(*Report, []events.Event)) error {
	o.Sink = nil // a watch emits changes, not every decision of every run
	for {
		prev, err := LoadState(statePath)
		if err != nil {
			return err
		}
		o.RunID = ""
		rep, err := Run(ctx, targets, o)
		if err != nil {
			return err
		}
		evs := Changes(rep, prev, o)
		next := StateOf(rep, prev)
		if warnExpiry > 0 {
			now := o.Now
			if now.IsZero() {
				now = time.Now()
			}
			next.Expiring = Expiring(o.Policy, now, warnExpiry)
			evs = append(evs, ExpiryChanges(next.Expiring, prev, o, rep.RunID, rep.FinishedAt)...)
		}
		for _, e := range evs {
			emit(e)
		}
		if err := next.Save(statePath); err != nil {
			return err
		}
		if after != nil {
			after(rep, evs)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}
