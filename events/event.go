package events

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/modelattest/modelattest/referrers"
)

// Envelope and class constants. They change only with a new event type
// (dev.modelattest.decision.v2); fields are only ever added within v1.
const (
	// SpecVersion is the CloudEvents version of the envelope.
	SpecVersion = "1.0"
	// Type is the CloudEvents type of every decision event.
	Type = "dev.modelattest.decision.v1"
	// ContentType is the data content type of the envelope.
	ContentType = "application/json"
	// OCSFVersion is the OCSF schema version data follows.
	OCSFVersion = "1.6.0"
	// ClassComplianceFinding is OCSF's class_uid for Compliance Finding.
	ClassComplianceFinding = 2003
	// CategoryFindings is OCSF's category_uid for Findings.
	CategoryFindings = 2
	// Product names this tool in OCSF metadata.
	Product = "modelattest"
)

// Face names the part of modelattest that took a decision.
type Face string

// The faces that decide.
const (
	FaceVerify        Face = "verify"
	FacePull          Face = "pull"
	FaceAdmission     Face = "admission"
	FaceRuntimeVerify Face = "runtime-verify"
	FaceBroker        Face = "broker"
	FaceAudit         Face = "audit"
)

// Activity is OCSF's activity_id for a finding.
type Activity int

// Finding activities (OCSF Compliance Finding activity_id).
const (
	// ActivityCreate: a decision taken now (the zero value means this).
	ActivityCreate Activity = 1
	// ActivityUpdate: a change to an earlier decision (audit --watch).
	ActivityUpdate Activity = 2
	// ActivityClose: the model is gone (its last tag was deleted).
	ActivityClose Activity = 3
)

func (a Activity) String() string {
	switch a {
	case ActivityCreate:
		return "Create"
	case ActivityUpdate:
		return "Update"
	case ActivityClose:
		return "Close"
	}
	return "Other"
}

// Severity is OCSF's severity_id. The mapping from a decision is fixed and
// documented in docs/EVENTS.md: it says what the decision did to the model.
type Severity int

// Severities used by decision events.
const (
	// SeverityInformational: the model passed its rule.
	SeverityInformational Severity = 1
	// SeverityLow: the model failed an audit-mode rule (recorded only).
	SeverityLow Severity = 2
	// SeverityMedium: the model failed a warn-mode rule (let through with a warning).
	SeverityMedium Severity = 3
	// SeverityHigh: the model was refused (an enforced rule failed, or the
	// decision could not be reached and the face fails closed).
	SeverityHigh Severity = 4
)

func (s Severity) String() string {
	switch s {
	case SeverityInformational:
		return "Informational"
	case SeverityLow:
		return "Low"
	case SeverityMedium:
		return "Medium"
	case SeverityHigh:
		return "High"
	}
	return "Unknown"
}

// Verdicts of a decision (data.unmapped.verdict).
const (
	VerdictPass  = "pass"
	VerdictFail  = "fail"
	VerdictError = "error"
)

// Event is one decision: a CloudEvents 1.0 structured-mode envelope.
type Event struct {
	SpecVersion     string    `json:"specversion"`
	ID              string    `json:"id"`
	Source          string    `json:"source"`
	Type            string    `json:"type"`
	Subject         string    `json:"subject,omitempty"`
	Time            time.Time `json:"time"`
	DataContentType string    `json:"datacontenttype"`
	Data            Finding   `json:"data"`
}

// Finding is the event's data: an OCSF Compliance Finding (class 2003).
// What OCSF has no attribute for is in Unmapped, as OCSF intends.
type Finding struct {
	ClassUID     int         `json:"class_uid"`
	ClassName    string      `json:"class_name"`
	CategoryUID  int         `json:"category_uid"`
	CategoryName string      `json:"category_name"`
	ActivityID   int         `json:"activity_id"`
	ActivityName string      `json:"activity_name"`
	TypeUID      int         `json:"type_uid"`
	TypeName     string      `json:"type_name"`
	Time         int64       `json:"time"`
	Duration     int64       `json:"duration"`
	SeverityID   int         `json:"severity_id"`
	Severity     string      `json:"severity"`
	StatusID     int         `json:"status_id"`
	Status       string      `json:"status"`
	Message      string      `json:"message"`
	Metadata     Metadata    `json:"metadata"`
	FindingInfo  FindingInfo `json:"finding_info"`
	Compliance   Compliance  `json:"compliance"`
	Resources    []Resource  `json:"resources"`
	Actor        *Actor      `json:"actor,omitempty"`
	Unmapped     Decision    `json:"unmapped"`
}

// Metadata is OCSF's metadata object.
type Metadata struct {
	Version        string      `json:"version"`
	Product        ProductInfo `json:"product"`
	UID            string      `json:"uid"`
	CorrelationUID string      `json:"correlation_uid,omitempty"`
	EventCode      string      `json:"event_code"`
}

// ProductInfo is OCSF's product object.
type ProductInfo struct {
	Name       string `json:"name"`
	VendorName string `json:"vendor_name"`
	Version    string `json:"version,omitempty"`
}

// FindingInfo is OCSF's finding_info object. UID is the same for the same
// model, policy and rule, so a SIEM can follow one finding across runs.
type FindingInfo struct {
	UID   string   `json:"uid"`
	Title string   `json:"title"`
	Desc  string   `json:"desc,omitempty"`
	Types []string `json:"types"`
}

// Compliance is OCSF's compliance object: the rule is the control, each
// requirement one check.
type Compliance struct {
	Control      string   `json:"control"`
	Standards    []string `json:"standards"`
	Requirements []string `json:"requirements"`
	Status       string   `json:"status"`
	StatusID     int      `json:"status_id"`
	StatusDetail string   `json:"status_detail,omitempty"`
	Checks       []Check  `json:"checks"`
}

// Check is OCSF's check object: one policy requirement.
type Check struct {
	Name     string `json:"name"`
	Status   string `json:"status"`
	StatusID int    `json:"status_id"`
	Desc     string `json:"desc,omitempty"`
}

// Resource is OCSF's resource_details object: the model.
type Resource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
	Name string `json:"name"`
}

// Actor is OCSF's actor object: who asked for the decision, where known.
type Actor struct {
	User    *User  `json:"user,omitempty"`
	AppName string `json:"app_name,omitempty"`
}

// User is OCSF's user object. Type is "User" for a person and "System"
// for a service account.
type User struct {
	Name string `json:"name"`
	UID  string `json:"uid,omitempty"`
	Type string `json:"type,omitempty"`
}

// Decision is data.unmapped: the decision in modelattest's own terms.
type Decision struct {
	Face           Face          `json:"face"`
	Verdict        string        `json:"verdict"`
	Allowed        bool          `json:"allowed"`
	Model          Model         `json:"model"`
	Policy         Policy        `json:"policy"`
	Requirements   []Requirement `json:"requirements"`
	Signers        []string      `json:"signers"`
	PredicateTypes []string      `json:"predicate_types"`
	// Signatures are the verified signatures of the model with their
	// format and, for Notary Project signatures, the signer's identity.
	Signatures    []Signature `json:"signatures,omitempty"`
	CorrelationID string      `json:"correlation_id,omitempty"`
	Changes       []string    `json:"changes,omitempty"`
	Error         string      `json:"error,omitempty"`
}

// Signature is one verified signature of the model.
type Signature struct {
	// Format is sigstore-bundle, notation-jws or notation-cose.
	Format string `json:"format"`
	// Identity is who signed, as the signature's certificate names it
	// (empty for a bare key).
	Identity string `json:"identity,omitempty"`
	// Anchors are the policy's trust anchors that verified it.
	Anchors []string `json:"anchors"`
}

// Model is the model a decision is about.
type Model struct {
	Reference  string        `json:"reference"`
	Repository string        `json:"repository"`
	Digest     digest.Digest `json:"digest,omitempty"`
	MediaType  string        `json:"media_type,omitempty"`
	Size       int64         `json:"size,omitempty"`
}

// Policy says which policy, rule and mode decided.
type Policy struct {
	Digest digest.Digest `json:"digest,omitempty"`
	Rule   int           `json:"rule"`
	Mode   string        `json:"mode,omitempty"`
}

// Requirement is one requirement of the rule and its outcome.
type Requirement struct {
	What    string   `json:"what"`
	Outcome string   `json:"outcome"`
	Reason  string   `json:"reason,omitempty"`
	By      []string `json:"by,omitempty"`
}

// Options say what a report alone does not: who decided, for whom, how
// long it took. Every field is optional.
type Options struct {
	// Face is the part of modelattest deciding (zero: FaceVerify).
	Face Face
	// Reference is the model as the user named it (zero: repository@digest).
	// It must not carry credentials; references never do.
	Reference string
	// Actor is who asked, where known (zero: omitted).
	Actor *Actor
	// CorrelationID ties events together: the admission request UID, the
	// audit run id (zero: omitted).
	CorrelationID string
	// Duration is how long the decision took (zero: 0).
	Duration time.Duration
	// Activity is the OCSF activity (zero: ActivityCreate).
	Activity Activity
	// Changes lists why an Update was emitted (audit --watch).
	Changes []string
	// Source is the CloudEvents source (zero: urn:modelattest:FACE).
	Source string
	// ID is the event id (zero: a new random UUID). Retries of one event
	// keep its id; collectors deduplicate on it.
	ID string
	// Time is when the decision was taken (zero: the report's VerifiedAt,
	// else time.Now).
	Time time.Time
	// Version is the product version (zero: omitted).
	Version string
	// Refused, when set, says the face refused the model for a reason the
	// report does not hold (admission: the reference is not pinned to a
	// digest, or another model of the same request was refused). The event
	// then says verdict fail, not allowed, with Refused as a failed
	// requirement, so it agrees with what the face answered (zero: the
	// report alone decides).
	Refused string
}

// RefusedRequirement is the requirement an event lists for Options.Refused.
const RefusedRequirement = "admitted by the face"

// FromReport builds the event of one decision from its report.
func FromReport(rep *referrers.Report, opts Options) Event {
	d := Decision{
		Model:        Model{Repository: rep.Repository, Digest: rep.Model.Digest, MediaType: rep.Model.MediaType, Size: rep.Model.Size},
		Policy:       Policy{Digest: rep.Policy, Rule: rep.Rule, Mode: string(rep.Mode)},
		Requirements: []Requirement{}, Signers: []string{}, PredicateTypes: []string{},
	}
	d.Verdict, d.Allowed = VerdictPass, true
	if !rep.Passed {
		d.Verdict, d.Allowed = VerdictFail, rep.Mode != referrers.ModeEnforce
	}
	for _, r := range rep.Requirements {
		out := Requirement{What: r.What, Outcome: "satisfied", Reason: r.Reason, By: r.By}
		if !r.Satisfied {
			out.Outcome = "failed"
		}
		d.Requirements = append(d.Requirements, out)
	}
	if opts.Refused != "" {
		// The face refused what the report alone would let through: the
		// event says what the face did, and why.
		d.Verdict, d.Allowed = VerdictFail, false
		d.Requirements = append(d.Requirements, Requirement{What: RefusedRequirement, Outcome: "failed", Reason: opts.Refused})
	}
	signers, types := map[string]bool{}, map[string]bool{}
	for _, f := range rep.Referrers {
		if f.Verdict != "verified" {
			continue
		}
		for _, s := range f.VerifiedBy {
			signers[s] = true
		}
		if f.PredicateType != "" {
			types[f.PredicateType] = true
		}
		if f.Depth == 1 && f.Format != "" && (f.Format != referrers.FormatSigstoreBundle || f.PredicateType == referrers.PredicateCosignSign) {
			d.Signatures = append(d.Signatures, Signature{Format: f.Format, Identity: f.Signer, Anchors: f.VerifiedBy})
		}
	}
	d.Signers, d.PredicateTypes = sorted(signers), sorted(types)
	if opts.Time.IsZero() {
		opts.Time = rep.VerifiedAt
	}
	return build(d, opts)
}

// FromError builds the event of a decision that could not be reached: the
// registry was unreachable, the policy did not load. The face failed
// closed, so the model was not allowed. digest may be empty when the
// reference never resolved.
func FromError(repository string, dgst digest.Digest, err error, opts Options) Event {
	d := Decision{
		Verdict: VerdictError, Model: Model{Repository: repository, Digest: dgst},
		Policy: Policy{Rule: -1}, Requirements: []Requirement{}, Signers: []string{}, PredicateTypes: []string{},
	}
	if err != nil {
		d.Error = err.Error()
	}
	return build(d, opts)
}

func build(d Decision, opts Options) Event {
	if opts.Face == "" {
		opts.Face = FaceVerify
	}
	if opts.Activity == 0 {
		opts.Activity = ActivityCreate
	}
	if opts.Time.IsZero() {
		opts.Time = time.Now()
	}
	if opts.ID == "" {
		opts.ID = NewID()
	}
	if opts.Source == "" {
		opts.Source = "urn:modelattest:" + string(opts.Face)
	}
	d.Face, d.CorrelationID, d.Changes = opts.Face, opts.CorrelationID, opts.Changes
	d.Model.Reference = opts.Reference
	if d.Model.Reference == "" {
		d.Model.Reference = d.Model.Repository
		if d.Model.Digest != "" {
			d.Model.Reference += "@" + d.Model.Digest.String()
		}
	}

	sev, status, compliance := severityOf(d)
	f := Finding{
		ClassUID: ClassComplianceFinding, ClassName: "Compliance Finding",
		CategoryUID: CategoryFindings, CategoryName: "Findings",
		ActivityID: int(opts.Activity), ActivityName: opts.Activity.String(),
		TypeUID:  ClassComplianceFinding*100 + int(opts.Activity),
		TypeName: "Compliance Finding: " + opts.Activity.String(),
		Time:     opts.Time.UnixMilli(), Duration: opts.Duration.Milliseconds(),
		SeverityID: int(sev), Severity: sev.String(),
		StatusID: status, Status: findingStatus[status],
		Message: message(d),
		Metadata: Metadata{Version: OCSFVersion, Product: ProductInfo{Name: Product, VendorName: Product, Version: opts.Version},
			UID: opts.ID, CorrelationUID: opts.CorrelationID, EventCode: string(opts.Face)},
		FindingInfo: FindingInfo{UID: findingUID(d), Title: title(d), Desc: firstFailure(d), Types: []string{"model-attestation"}},
		Compliance: Compliance{
			Control: fmt.Sprintf("policy rule %d", d.Policy.Rule), Standards: []string{"modelattest policy"},
			Requirements: []string{}, Status: complianceStatus[compliance], StatusID: compliance,
			StatusDetail: firstFailure(d), Checks: []Check{},
		},
		Resources: []Resource{{Type: "OCI Model", UID: d.Model.Digest.String(), Name: d.Model.Reference}},
		Actor:     opts.Actor,
		Unmapped:  d,
	}
	if d.Policy.Digest != "" {
		f.Compliance.Standards = []string{"modelattest policy " + d.Policy.Digest.String()}
	}
	for _, r := range d.Requirements {
		f.Compliance.Requirements = append(f.Compliance.Requirements, r.What)
		c := Check{Name: r.What, Status: complianceStatus[1], StatusID: 1, Desc: r.Reason}
		if r.Outcome != "satisfied" {
			c.Status, c.StatusID = complianceStatus[3], 3
		}
		f.Compliance.Checks = append(f.Compliance.Checks, c)
	}
	subject := d.Model.Reference
	return Event{SpecVersion: SpecVersion, ID: opts.ID, Source: opts.Source, Type: Type, Subject: subject,
		Time: opts.Time.UTC(), DataContentType: ContentType, Data: f}
}

// OCSF enumerations used here: finding status_id and compliance status_id.
var (
	findingStatus    = map[int]string{1: "New", 3: "Suppressed", 4: "Resolved"}
	complianceStatus = map[int]string{0: "Unknown", 1: "Pass", 3: "Fail"}
)

// severityOf maps a decision to (severity_id, finding status_id,
// compliance status_id); docs/EVENTS.md has the same table.
func severityOf(d Decision) (Severity, int, int) {
	switch {
	case d.Verdict == VerdictError:
		return SeverityHigh, 1, 0
	case d.Verdict == VerdictPass:
		return SeverityInformational, 1, 1
	case d.Allowed && d.Policy.Mode == string(referrers.ModeWarn):
		return SeverityMedium, 3, 3
	case d.Allowed:
		return SeverityLow, 3, 3
	}
	return SeverityHigh, 1, 3
}

func title(d Decision) string {
	switch d.Verdict {
	case VerdictError:
		return fmt.Sprintf("%s could not be verified", d.Model.Reference)
	case VerdictPass:
		return fmt.Sprintf("%s satisfies policy rule %d (%s)", d.Model.Reference, d.Policy.Rule, d.Policy.Mode)
	}
	return fmt.Sprintf("%s fails policy rule %d (%s)", d.Model.Reference, d.Policy.Rule, d.Policy.Mode)
}

func message(d Decision) string {
	m := fmt.Sprintf("%s: %s", d.Face, title(d))
	if r := firstFailure(d); r != "" {
		m += ": " + r
	}
	if len(d.Changes) > 0 {
		m += " [" + strings.Join(d.Changes, "; ") + "]"
	}
	return m
}

// firstFailure is the first failing requirement, or the error.
func firstFailure(d Decision) string {
	if d.Error != "" {
		return d.Error
	}
	for _, r := range d.Requirements {
		if r.Outcome != "satisfied" {
			return r.What + ": " + r.Reason
		}
	}
	return ""
}

// findingUID names one finding across runs: face, model, policy and rule.
func findingUID(d Decision) string {
	h := sha256.Sum256([]byte(strings.Join([]string{string(d.Face), d.Model.Repository, d.Model.Digest.String(),
		d.Policy.Digest.String(), fmt.Sprint(d.Policy.Rule)}, "\x00")))
	return hex.EncodeToString(h[:16])
}

// NewID returns a random (version 4) UUID, the default event id.
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func sorted(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
