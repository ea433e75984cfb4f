package events_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/modelattest/modelattest/events"
	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/referrers"
)

func report(passed bool, mode referrers.Mode) *referrers.Report {
	m := digest.FromString("model")
	rep := &referrers.Report{Repository: "reg.example/models/llama", Policy: digest.FromString("policy"), Rule: 1, Mode: mode, Passed: passed,
		Model:      ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: m, Size: 1234},
		VerifiedAt: time.Date(2026, 12, 7, 1, 2, 3, 0, time.UTC),
		Requirements: []referrers.Requirement{
			{What: "signatures", Satisfied: true, By: []string{"release"}},
			{What: "attestation " + referrers.PredicateSLSAProvenance, Satisfied: passed, Reason: "builder id https://evil.example is not allowed"},
		},
		Referrers: []referrers.Finding{
			{Digest: digest.FromString("sig"), Subject: m, Depth: 1, PredicateType: referrers.PredicateCosignSign, Verdict: "verified", VerifiedBy: []string{"release"}},
			{Digest: digest.FromString("prov"), Subject: m, Depth: 1, PredicateType: referrers.PredicateSLSAProvenance, Verdict: "verified", VerifiedBy: []string{"ci", "release"}},
			{Digest: digest.FromString("junk"), Subject: m, Depth: 1, PredicateType: "https://example/untrusted", Verdict: "untrusted"},
		},
	}
	if passed {
		rep.Requirements[1].Reason = ""
	}
	return rep
}

// TestFromReportSeverityMapping: the documented table (docs/EVENTS.md)
// from verdict and mode to severity, finding status, compliance status and
// whether the model was let through.
func TestFromReportSeverityMapping(t *testing.T) {
	for _, c := range []struct {
		name               string
		rep                *referrers.Report
		err                bool
		severity           events.Severity
		status, compliance int
		verdict            string
		allowed            bool
	}{
		{"pass", report(true, referrers.ModeEnforce), false, events.SeverityInformational, 1, 1, "pass", true},
		{"fail enforce", report(false, referrers.ModeEnforce), false, events.SeverityHigh, 1, 3, "fail", false},
		{"fail warn", report(false, referrers.ModeWarn), false, events.SeverityMedium, 3, 3, "fail", true},
		{"fail audit", report(false, referrers.ModeAudit), false, events.SeverityLow, 3, 3, "fail", true},
		{"could not run", nil, true, events.SeverityHigh, 1, 0, "error", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var e events.Event
			if c.err {
				e = events.FromError("reg.example/models/llama", "", errors.New("registry unreachable"), events.Options{Face: events.FaceAdmission})
			} else {
				e = events.FromReport(c.rep, events.Options{Face: events.FacePull})
			}
			d := e.Data
			if d.SeverityID != int(c.severity) || d.StatusID != c.status || d.Compliance.StatusID != c.compliance ||
				d.Unmapped.Verdict != c.verdict || d.Unmapped.Allowed != c.allowed {
				t.Errorf("got severity %d status %d compliance %d verdict %s allowed %v", d.SeverityID, d.StatusID, d.Compliance.StatusID, d.Unmapped.Verdict, d.Unmapped.Allowed)
			}
			b, _ := json.Marshal(e)
			regtest.CheckDecisionEvent(t, b)
		})
	}
}

// TestFromReportCarriesTheDecision: model, policy, each requirement with
// its outcome, verified signers and predicate types only, actor, duration,
// correlation id, and the envelope.
func TestFromReportCarriesTheDecision(t *testing.T) {
	rep := report(false, referrers.ModeEnforce)
	e := events.FromReport(rep, events.Options{Face: events.FaceAdmission, Reference: "reg.example/models/llama:v1",
		Actor:         &events.Actor{User: &events.User{Name: "system:serviceaccount:ml:deployer", Type: "System"}},
		CorrelationID: "4b1e0d7c-req", Duration: 1500 * time.Millisecond, Version: "1.2.3"})
	if e.SpecVersion != "1.0" || e.Type != "dev.modelattest.decision.v1" || e.Source != "urn:modelattest:admission" || e.ID == "" ||
		!e.Time.Equal(rep.VerifiedAt) || e.Subject != "reg.example/models/llama:v1" {
		t.Errorf("envelope: %+v", e)
	}
	d := e.Data
	if d.ClassUID != 2003 || d.TypeUID != 200301 || d.Duration != 1500 || d.Metadata.CorrelationUID != "4b1e0d7c-req" ||
		d.Metadata.UID != e.ID || d.Actor.User.Name != "system:serviceaccount:ml:deployer" {
		t.Errorf("data: %+v", d)
	}
	u := d.Unmapped
	if u.Model.Digest != rep.Model.Digest || u.Model.Reference != "reg.example/models/llama:v1" || u.Policy.Digest != rep.Policy || u.Policy.Rule != 1 || u.Policy.Mode != "enforce" {
		t.Errorf("model/policy: %+v %+v", u.Model, u.Policy)
	}
	if strings.Join(u.Signers, ",") != "ci,release" {
		t.Errorf("signers %v: want the verified anchors only", u.Signers)
	}
	if strings.Join(u.PredicateTypes, ",") != referrers.PredicateCosignSign+","+referrers.PredicateSLSAProvenance {
		t.Errorf("predicate types %v: want the verified ones only", u.PredicateTypes)
	}
	if len(u.Requirements) != 2 || u.Requirements[0].Outcome != "satisfied" || u.Requirements[1].Outcome != "failed" ||
		!strings.Contains(u.Requirements[1].Reason, "evil.example") {
		t.Errorf("requirements %+v", u.Requirements)
	}
	if len(d.Compliance.Checks) != 2 || d.Compliance.Checks[1].Status != "Fail" || !strings.Contains(d.Compliance.StatusDetail, "builder id") {
		t.Errorf("compliance %+v", d.Compliance)
	}
	// The same model, policy and rule is one finding across runs; ids differ.
	again := events.FromReport(rep, events.Options{Face: events.FaceAdmission})
	if again.Data.FindingInfo.UID != d.FindingInfo.UID || again.ID == e.ID {
		t.Errorf("finding uid %s/%s, ids %s/%s", again.Data.FindingInfo.UID, d.FindingInfo.UID, again.ID, e.ID)
	}
	b, _ := json.Marshal(e)
	regtest.CheckDecisionEvent(t, b)
}

// TestSchemaBites: the schema refuses what a consumer must be able to rely
// on never happening, so validating against it proves something.
func TestSchemaBites(t *testing.T) {
	s := regtest.CompileSchema(t, "events/decision.schema.json")
	good, _ := json.Marshal(events.FromReport(report(true, referrers.ModeEnforce), events.Options{}))
	for name, edit := range map[string]func(m map[string]any){
		"none":         func(map[string]any) {},
		"wrong type":   func(m map[string]any) { m["type"] = "dev.modelattest.decision.v2" },
		"no id":        func(m map[string]any) { delete(m, "id") },
		"extra field":  func(m map[string]any) { m["password"] = "x" },
		"wrong class":  func(m map[string]any) { m["data"].(map[string]any)["class_uid"] = 2004 },
		"unknown face": func(m map[string]any) { m["data"].(map[string]any)["unmapped"].(map[string]any)["face"] = "shell" },
		"bad digest": func(m map[string]any) {
			m["data"].(map[string]any)["unmapped"].(map[string]any)["model"].(map[string]any)["digest"] = "latest"
		},
		"extra in unmapped": func(m map[string]any) { m["data"].(map[string]any)["unmapped"].(map[string]any)["token"] = "x" },
	} {
		var m map[string]any
		json.Unmarshal(good, &m)
		edit(m)
		b, _ := json.Marshal(m)
		v, _ := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		err := s.Validate(v)
		if (err == nil) != (name == "none") {
			t.Errorf("%s: validation error %v", name, err)
		}
	}
}

func TestNewIDIsAUUIDv4(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := events.NewID()
		if len(id) != 36 || id[14] != '4' || !strings.ContainsRune("89ab", rune(id[19])) || seen[id] {
			t.Fatalf("id %q", id)
		}
		seen[id] = true
	}
}

func TestParseHeaders(t *testing.T) {
	h, err := events.ParseHeaders("Authorization=Splunk%20tok%2Cen, X-Tenant = ml ,")
	if err != nil || h.Get("Authorization") != "Splunk tok,en" || h.Get("X-Tenant") != "ml" {
		t.Fatalf("%v %v", h, err)
	}
	for _, bad := range []string{"Authorization", "=x", "Bad Name=x", "A=%zz-secret"} {
		_, err := events.ParseHeaders(bad)
		if err == nil {
			t.Errorf("%q: accepted", bad)
		} else if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "%zz") {
			t.Errorf("%q: error quotes the value: %v", bad, err)
		}
	}
}
