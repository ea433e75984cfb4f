package audit

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/modelattest/modelattest/events"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// TestControls: every shipped mapping loads strictly and names only known
// evidence kinds; a control is satisfied, failed or not evidenced by the
// requirements a model's rule has.
func TestControls(t *testing.T) {
	if fmt.Sprint(Frameworks()) != "[nist-ssdf slsa soc2]" {
		t.Fatalf("frameworks %v", Frameworks())
	}
	known := map[string]bool{"signatures": true, "provenance": true, "model-signing": true, "vsa": true, "policy": true}
	for _, f := range Frameworks() {
		c, err := LoadControls(f)
		if err != nil || c.Framework != f || len(c.Controls) == 0 {
			t.Fatalf("%s: %v %+v", f, err, c)
		}
		for _, ctl := range c.Controls {
			for _, k := range ctl.Evidence {
				if !known[k] {
					t.Errorf("%s %s: unknown evidence kind %q", f, ctl.ID, k)
				}
			}
		}
	}
	if _, err := LoadControls("iso27001"); err == nil {
		t.Error("an unknown framework loaded")
	}
	c, _ := LoadControls("slsa")
	status := func(reqs ...events.Requirement) string {
		var s []string
		for _, r := range c.Evaluate(reqs) {
			s = append(s, r.ID+"="+r.Status)
		}
		return fmt.Sprint(s)
	}
	sig := events.Requirement{What: "signatures", Outcome: "satisfied"}
	prov := events.Requirement{What: "attestation " + referrers.PredicateSLSAProvenance, Outcome: "satisfied"}
	badProv := prov
	badProv.Outcome = "failed"
	for _, tc := range []struct {
		reqs []events.Requirement
		want string
	}{
		{[]events.Requirement{sig, prov}, "[Build L1=satisfied Build L2=satisfied Build L3=partial]"},
		{[]events.Requirement{sig, badProv}, "[Build L1=failed Build L2=failed Build L3=failed]"},
		{[]events.Requirement{sig}, "[Build L1=not-evidenced Build L2=partial Build L3=not-evidenced]"},
		{nil, "[Build L1=not-evidenced Build L2=not-evidenced Build L3=not-evidenced]"},
	} {
		if got := status(tc.reqs...); got != tc.want {
			t.Errorf("%v: %s, want %s", tc.reqs, got, tc.want)
		}
	}
}

// TestTransportRefusesBadCAFile: an audit given a CA file it cannot use
// stops instead of auditing with an empty trust pool (it used to ignore
// the read error).
func TestTransportRefusesBadCAFile(t *testing.T) {
	if _, err := newTransport(oras.RemoteOptions{CAFile: filepath.Join(t.TempDir(), "absent.pem")}, 0); err == nil {
		t.Fatal("a missing CA file was accepted")
	}
}
