package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"

	"github.com/modelattest/modelattest/audit"
	"github.com/modelattest/modelattest/events"
	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// TestAuditWatchChanges: after a baseline run (which announces nothing),
// moving a tag, deleting a signature and adding one each produce exactly
// one event, with the right reasons; a run with no change produces none.
func TestAuditWatchChanges(t *testing.T) {
	ctx := context.Background()
	w := newAuditWorld(t, regtest.Embedded(t, ""))
	p, err := referrers.LoadPolicy(ctx, w.policy)
	if err != nil {
		t.Fatal(err)
	}
	tgt, err := oras.OpenRemote(ctx, w.repo, oras.RemoteOptions{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	opts := audit.Options{Policy: p, Remote: oras.RemoteOptions{PlainHTTP: true}}
	var state *audit.State
	step := func(string) []events.Event {
		t.Helper()
		rep, err := audit.Run(ctx, []string{w.repo}, opts)
		if err != nil {
			t.Fatal(err)
		}
		evs := audit.Changes(rep, state, opts)
		state = audit.StateOf(rep, state)
		for _, e := range evs {
			b, _ := json.Marshal(e)
			regtest.CheckDecisionEvent(t, b)
		}
		return evs
	}
	one := func(name string, evs []events.Event, subject string, activity int, want ...string) {
		t.Helper()
		if len(evs) != 1 {
			t.Fatalf("%s: %d events, want exactly one: %v", name, len(evs), evs)
		}
		e := evs[0]
		got := strings.Join(e.Data.Unmapped.Changes, "\n")
		for _, s := range want {
			if !strings.Contains(got, s) {
				t.Errorf("%s: reasons %q lack %q", name, got, s)
			}
		}
		if len(e.Data.Unmapped.Changes) != len(want) || e.Subject != subject || e.Data.ActivityID != activity {
			t.Errorf("%s: %s activity %d reasons %q", name, e.Subject, e.Data.ActivityID, got)
		}
	}

	if evs := step("baseline"); len(evs) != 0 {
		t.Fatalf("baseline announced %d events", len(evs))
	}
	if evs := step("no change"); len(evs) != 0 {
		t.Fatalf("nothing changed, yet %d events: %v", len(evs), evs[0].Data.Unmapped.Changes)
	}

	// Move a tag: one event, on the model the tag now names.
	old := w.digests["untrusted"]
	moved, err := oras.Push(ctx, tgt, "untrusted", regtest.ModelDir(t, 1500), oras.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	one("move", step("move"), w.repo+"@"+moved.Digest.String(), 2, "tag untrusted moved from "+old+" to "+moved.Digest.String())

	// Delete the signature of the passing model: referrer removed, verdict.
	good, err := tgt.Resolve(ctx, "good")
	if err != nil {
		t.Fatal(err)
	}
	sigs, err := referrers.FindBundles(ctx, tgt, good, referrers.PredicateCosignSign)
	if err != nil || len(sigs) != 1 {
		t.Fatalf("%d signatures, %v", len(sigs), err)
	}
	if err := tgt.GraphTarget.(content.Deleter).Delete(ctx, sigs[0].Descriptor); err != nil {
		t.Fatal(err)
	}
	goodRef := w.repo + "@" + good.Digest.String()
	one("delete signature", step("delete"), goodRef, 2,
		"referrer "+sigs[0].Descriptor.Digest.String()+" removed ("+referrers.PredicateCosignSign+")", "verdict changed from pass to fail")

	// Sign it again: referrer added, verdict back.
	added, err := referrers.Sign(ctx, tgt, good, w.release, referrers.AttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	one("add signature", step("add"), goodRef, 2,
		"referrer "+added.Digest.String()+" added ("+referrers.PredicateCosignSign+", verified)", "verdict changed from fail to pass")

	if evs := step("quiet"); len(evs) != 0 {
		t.Fatalf("nothing changed, yet %d events", len(evs))
	}
	// Delete the last tag of a model: it is closed.
	unsigned := w.digests["unsigned"]
	if err := tgt.GraphTarget.(content.Deleter).Delete(ctx, mustResolve(t, tgt, "unsigned")); err != nil {
		t.Fatal(err)
	}
	one("delete tag", step("untag"), w.repo+"@"+unsigned, 3, "tag unsigned deleted")
}

func mustResolve(t *testing.T, tgt *oras.Target, tag string) ocispec.Descriptor {
	t.Helper()
	d, err := tgt.Resolve(context.Background(), tag)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestAuditWatchCLI: audit --watch writes its state on the first run and
// announces nothing; SIGINT stops it with exit 130; a restart on the same
// state announces nothing either.
func TestAuditWatchCLI(t *testing.T) {
	w := newAuditWorld(t, regtest.Embedded(t, ""))
	dir := t.TempDir()
	state, evfile := filepath.Join(dir, "state.json"), filepath.Join(dir, "events.jsonl")
	for round := range 2 {
		cmd := exec.Command(modelattest, "audit", "--plain-http", "--policy", w.policy, "--watch", "500ms", "--state", state, "--events", evfile, w.repo)
		out := &lockedBuffer{} // read while the process writes
		cmd.Stdout, cmd.Stderr = out, out
		before := time.Time{}
		if fi, err := os.Stat(state); err == nil {
			before = fi.ModTime()
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(2 * time.Minute)
		for {
			if fi, err := os.Stat(state); err == nil && fi.ModTime().After(before) && strings.Contains(out.String(), "changed") {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("round %d: no run finished\n%s", round, out.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
		cmd.Process.Signal(syscall.SIGINT)
		err := cmd.Wait()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
			t.Fatalf("round %d: SIGINT gave %v, want exit 130\n%s", round, err, out.String())
		}
		if b, _ := os.ReadFile(evfile); len(b) != 0 {
			t.Fatalf("round %d: events without a change:\n%s", round, b)
		}
		if !strings.Contains(out.String(), fmt.Sprintf("%d models, 0 changed", 4)) {
			t.Errorf("round %d:\n%s", round, out.String())
		}
	}
}
