package events

import (
	"fmt"

	"github.com/opencontainers/go-digest"
)

// FromAnchorExpiry builds the event of a policy's trust anchor expiring
// soon (audit --watch --warn-expiry): no model is decided, so the verdict
// is pass and the model is "trust anchor NAME" with repository "policy";
// reasons (in Changes) say what expires and when. Its severity is Medium:
// nothing is refused yet, but every model the anchor vouches for will
// fail once it has expired. opts.Activity zero means ActivityUpdate.
func FromAnchorExpiry(anchor string, policy digest.Digest, reasons []string, opts Options) Event {
	if opts.Activity == 0 {
		opts.Activity = ActivityUpdate
	}
	opts.Changes = reasons
	if opts.Reference == "" {
		opts.Reference = "trust anchor " + anchor
	}
	d := Decision{
		Verdict: VerdictPass, Allowed: true, Model: Model{Repository: "policy"},
		Policy: Policy{Digest: policy, Rule: -1}, Requirements: []Requirement{}, Signers: []string{anchor}, PredicateTypes: []string{},
	}
	e := build(d, opts)
	title := fmt.Sprintf("trust anchor %s expires soon", anchor)
	e.Data.SeverityID, e.Data.Severity = int(SeverityMedium), SeverityMedium.String()
	e.Data.FindingInfo.Title = title
	e.Data.Message = fmt.Sprintf("%s: %s %v", d.Face, title, reasons)
	e.Data.Compliance.Control = "trust anchor " + anchor
	return e
}
