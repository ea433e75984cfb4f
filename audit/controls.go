package audit

import (
	"embed"
	"fmt"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/modelattest/modelattest/events"
	"github.com/modelattest/modelattest/referrers"
)

//go:embed controls/*.yaml
var controlFiles embed.FS

// Frameworks lists the control mappings shipped in audit/controls.
func Frameworks() []string {
	entries, _ := controlFiles.ReadDir("controls")
	var out []string
	for _, e := range entries {
		out = append(out, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	sort.Strings(out)
	return out
}

// Controls maps policy requirements to the control ids they evidence
// (audit/controls/FRAMEWORK.yaml; docs/AUDIT.md explains the mappings).
type Controls struct {
	Framework string    `json:"framework"`
	Title     string    `json:"title"`
	Controls  []Control `json:"controls"`
}

// Control is one control and the evidence kinds that support it:
// "signatures", "provenance", "model-signing", "vsa", "policy" (the model
// met its whole rule), or "attestation:PREDICATE-TYPE".
type Control struct {
	ID       string   `json:"id"`
	Title    string   `json:"title"`
	Evidence []string `json:"evidence"`
}

// ControlResult says what a model's evidence shows for one control.
type ControlResult struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	// Status is "satisfied" (the rule requires every evidence kind the
	// control lists, and each held), "partial" (what the rule requires of
	// them held, but it does not require them all), "failed" (one did not
	// hold) or "not-evidenced" (the rule requires none of them).
	Status       string   `json:"status"`
	Requirements []string `json:"requirements"`
}

// LoadControls reads a shipped mapping by framework name.
func LoadControls(framework string) (*Controls, error) {
	b, err := controlFiles.ReadFile("controls/" + framework + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("controls %q: want one of %s", framework, strings.Join(Frameworks(), ", "))
	}
	var c Controls
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return nil, fmt.Errorf("controls %s: %w", framework, err)
	}
	return &c, nil
}

// evidenceKind names what a requirement evidences.
func evidenceKind(what string) string {
	switch {
	case what == "signatures":
		return "signatures"
	case what == "attestation "+referrers.PredicateSLSAProvenance:
		return "provenance"
	case what == "attestation "+referrers.PredicateModelSigning:
		return "model-signing"
	case what == "attestation "+referrers.PredicateVSA:
		return "vsa"
	case strings.HasPrefix(what, "attestation "):
		return "attestation:" + strings.TrimPrefix(what, "attestation ")
	}
	return "policy"
}

// Evaluate maps a model's requirements onto the controls.
func (c *Controls) Evaluate(reqs []events.Requirement) []ControlResult {
	passed := true
	for _, r := range reqs {
		passed = passed && r.Outcome == "satisfied"
	}
	var out []ControlResult
	for _, ctl := range c.Controls {
		res := ControlResult{ID: ctl.ID, Title: ctl.Title, Status: "not-evidenced", Requirements: []string{}}
		failed, missing := false, false
		for _, kind := range ctl.Evidence {
			found := false
			if kind == "policy" && len(reqs) > 0 {
				res.Requirements = append(res.Requirements, "the whole policy rule")
				failed, found = failed || !passed, true
			}
			for _, r := range reqs {
				if kind != "policy" && evidenceKind(r.What) == kind {
					res.Requirements = append(res.Requirements, r.What)
					failed, found = failed || r.Outcome != "satisfied", true
				}
			}
			missing = missing || !found
		}
		switch {
		case len(res.Requirements) == 0:
		case failed:
			res.Status = "failed"
		case missing:
			res.Status = "partial"
		default:
			res.Status = "satisfied"
		}
		out = append(out, res)
	}
	return out
}
