package integration

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelattest/modelattest/audit"
	"github.com/modelattest/modelattest/events"
	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// TestAuditWatchAnchorExpiry: with --warn-expiry 30d, an x509 anchor whose
// root expires in 10 days gives exactly one event naming that root, and
// the next interval gives nothing (the state remembers it); an anchor
// whose root expires in a year gives none, and a leaf certificate that
// expires tomorrow in its roots file is not watched.
func TestAuditWatchAnchorExpiry(t *testing.T) {
	ctx := context.Background()
	w := newAuditWorld(t, regtest.Embedded(t, ""))
	soon := regtest.NewNotaryCA(t, "Soon Root")
	// NewNotaryCA makes a root valid for a year; this one is re-issued by
	// the same key to expire in 10 days.
	tmpl := *soon.Cert
	tmpl.NotAfter = time.Now().Add(10 * 24 * time.Hour)
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, soon.Key.Public(), soon.Key)
	if err != nil {
		t.Fatal(err)
	}
	soonRoot, _ := x509.ParseCertificate(der)
	later := regtest.NewNotaryCA(t, "Later Root")
	leaf := later.Leaf(t, pkix.Name{CommonName: "ml-release", Organization: []string{"Acme"}}, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), "")
	regtest.WritePEM(t, filepath.Join(w.dir, "soon.pem"), soonRoot)
	regtest.WritePEM(t, filepath.Join(w.dir, "later.pem"), later.Cert, leaf.Chain[0])
	text, err := os.ReadFile(w.policy)
	if err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(w.dir, "expiry-policy.yaml")
	os.WriteFile(policy, []byte(strings.Replace(string(text), "trust:\n", "trust:\n  soon: {x509: {roots: soon.pem}}\n  later: {x509: {roots: later.pem}}\n", 1)), 0o644)
	p, err := referrers.LoadPolicy(ctx, policy)
	if err != nil {
		t.Fatal(err)
	}

	state := filepath.Join(t.TempDir(), "state.json")
	var got [][]events.Event
	run := func(rounds int) {
		t.Helper()
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		n := 0
		var evs []events.Event
		err := audit.Watch(ctx, []string{w.repo}, audit.Options{Policy: p, Remote: oras.RemoteOptions{PlainHTTP: true}}, state,
			10*time.Millisecond, 30*24*time.Hour, func(e events.Event) { evs = append(evs, e) },
			func(*audit.Report, []events.Event) {
				got, evs = append(got, evs), nil
				if n++; n == rounds {
					cancel()
				}
			})
		if err != context.Canceled {
			t.Fatalf("watch: %v", err)
		}
	}
	run(2)
	run(1) // a restart on the same state

	if len(got) != 3 {
		t.Fatalf("%d runs, want 3", len(got))
	}
	if len(got[0]) != 1 {
		t.Fatalf("first run: %d events, want exactly one: %+v", len(got[0]), got[0])
	}
	e := got[0][0]
	b, _ := json.Marshal(e)
	regtest.CheckDecisionEvent(t, b)
	reasons := e.Data.Unmapped.Changes
	want := `root certificate "CN=Soon Root,O=Acme,C=US" (serial 1) expires ` + soonRoot.NotAfter.UTC().Format(time.RFC3339)
	if e.Subject != "trust anchor soon" || len(reasons) != 1 || reasons[0] != want || e.Data.Severity != "Medium" {
		t.Errorf("event %s %s reasons %q, want one reason %q", e.Subject, e.Data.Severity, reasons, want)
	}
	for i, evs := range got[1:] {
		if len(evs) != 0 {
			t.Errorf("run %d: %d events, want none (already announced): %v", i+2, len(evs), evs[0].Data.Unmapped.Changes)
		}
	}
}

// TestAuditWarnExpiryCommandLine: --warn-expiry without --watch, or with a
// window that is not a positive number of days or duration, is a bad
// command line (exit 2) naming the flag, refused before any registry is
// contacted.
func TestAuditWarnExpiryCommandLine(t *testing.T) {
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	os.WriteFile(policy, []byte("version: 1\nmodels: [{match: [\"**\"]}]\n"), 0o644)
	state := filepath.Join(dir, "state.json")
	for name, args := range map[string][]string{
		"without --watch": {"--output", filepath.Join(dir, "out"), "--warn-expiry", "30d"},
		"not a window":    {"--watch", "1m", "--state", state, "--warn-expiry", "soon"},
		"zero days":       {"--watch", "1m", "--state", state, "--warn-expiry", "0d"},
		"negative":        {"--watch", "1m", "--state", state, "--warn-expiry", "-24h"},
	} {
		cmd := exec.Command(modelattest, append([]string{"audit", "--policy", policy}, append(args, "127.0.0.1:1/none")...)...)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "--warn-expiry") {
			t.Errorf("%s: %v, want exit 2 naming --warn-expiry\n%s", name, err, out)
		}
		if _, err := os.Stat(state); err == nil {
			t.Errorf("%s: a state file was written", name)
		}
	}
}
