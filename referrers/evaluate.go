package referrers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore-go/pkg/verify"
	orasgo "oras.land/oras-go/v2"

	"github.com/modelattest/modelattest/oras"
)

// ErrPolicyNotSatisfied is wrapped by the error VerifyModel returns when a
// model fails an enforced rule.
var ErrPolicyNotSatisfied = errors.New("policy not satisfied")

// PolicyError carries the report of a model that failed an enforced rule.
type PolicyError struct{ Report *Report }

// Error is the summary and the first failing requirement; the whole
// report is in Report.
func (e *PolicyError) Error() string {
	r := e.Report
	var failed []Requirement
	for _, q := range r.Requirements {
		if !q.Satisfied {
			failed = append(failed, q)
		}
	}
	msg := fmt.Sprintf("%s: %s@%s", ErrPolicyNotSatisfied, r.Repository, r.Model.Digest)
	if len(failed) > 0 {
		msg += ": " + failed[0].What + ": " + failed[0].Reason
	}
	if len(failed) > 1 {
		msg += fmt.Sprintf(" (and %d more failing requirements: see the report)", len(failed)-1)
	}
	return msg
}

func (e *PolicyError) Unwrap() error { return ErrPolicyNotSatisfied }

// Limits bound what verification reads from a registry that may be hostile.
// Zero fields take the defaults.
type Limits struct {
	// MaxDepth is how many levels of referrers are followed (default 3:
	// signatures on attestations on the model).
	MaxDepth int
	// MaxReferrers is how many referrers one manifest may list (default 256).
	MaxReferrers int
	// MaxNodes bounds the whole graph (default 1024).
	MaxNodes int
}

func (l Limits) withDefaults() Limits {
	if l.MaxDepth <= 0 {
		l.MaxDepth = 3
	}
	if l.MaxReferrers <= 0 {
		l.MaxReferrers = 256
	}
	if l.MaxNodes <= 0 {
		l.MaxNodes = 1024
	}
	return l
}

// VerifyOptions are the optional settings of VerifyModel.
type VerifyOptions struct {
	Limits Limits
	// Now is the time maxAge is measured against (zero: time.Now).
	Now time.Time
}

// Finding is what verification made of one referrer.
type Finding struct {
	Digest        digest.Digest `json:"digest"`
	Subject       digest.Digest `json:"subject"`
	Depth         int           `json:"depth"`
	ArtifactType  string        `json:"artifactType,omitempty"`
	PredicateType string        `json:"predicateType,omitempty"`
	Verdict       Verdict       `json:"verdict"`
	VerifiedBy    []string      `json:"verifiedBy,omitempty"`
	Reason        string        `json:"reason,omitempty"`
	// Format is FormatSigstoreBundle, FormatNotationJWS or FormatNotationCOSE.
	Format string `json:"format,omitempty"`
	// Signer is who signed, as the signature says (a Notary Project
	// signing certificate's subject).
	Signer string `json:"signer,omitempty"`
	// Notes say what a verified signature's check did not enforce or cover.
	Notes []string `json:"notes,omitempty"`

	statement *Statement
	notation  *NotationSignature
	bundle    []byte // kept for a verified model-signing statement (pull --model-signature)
	// keys names, for each anchor in VerifiedBy, the key that made the
	// signature (keyFingerprint): distinct signers are counted by key, so
	// one key under two anchor names is one signer.
	keys map[string]string
	// notAfter is when this finding's verification stops holding (zero:
	// never); Report.ValidUntil is the earliest over counted findings.
	notAfter time.Time
}

// verifiedBy records that anchor verified the finding's signature, made
// by the key whose fingerprint is key.
func (f *Finding) verifiedBy(anchor, key string) {
	if contains(f.VerifiedBy, anchor) {
		return
	}
	f.VerifiedBy = append(f.VerifiedBy, anchor)
	if f.keys == nil {
		f.keys = map[string]string{}
	}
	if key == "" {
		key = "referrer " + f.Digest.String() // an unnamed key is this signature's own
	}
	f.keys[anchor] = key
}

// Requirement is one thing the matched rule requires, and whether it held.
type Requirement struct {
	What string `json:"what"`
	// PredicateType is the statement type the requirement counts.
	PredicateType string   `json:"predicateType,omitempty"`
	Satisfied     bool     `json:"satisfied"`
	By            []string `json:"by,omitempty"`
	// Referrers are the referrers that met it.
	Referrers []digest.Digest `json:"referrers,omitempty"`
	Reason    string          `json:"reason,omitempty"`
}

// Report is the result of verifying one model against a policy. It is data:
// the CLI prints it as text or JSON.
type Report struct {
	Repository   string             `json:"repository"`
	Model        ocispec.Descriptor `json:"model"`
	Policy       digest.Digest      `json:"policy"`
	Rule         int                `json:"rule"`
	Mode         Mode               `json:"mode"`
	Passed       bool               `json:"passed"`
	Requirements []Requirement      `json:"requirements"`
	Referrers    []Finding          `json:"referrers"`
	VerifiedAt   time.Time          `json:"verifiedAt"`
	// ValidUntil, when not zero, is the earliest time a certificate (or
	// CRL) that a counted signature's verification rested on stops being
	// valid: an X.509 PKI chain's leaf, intermediate or root, a CRL's
	// nextUpdate plus grace, a Notary Project signing chain, a Fulcio leaf
	// still valid at VerifiedAt. Past it the report may no longer hold, so
	// a caller caching the decision (admission) keeps it no longer. Plain
	// keys do not expire: zero when only they verified.
	ValidUntil time.Time `json:"validUntil,omitzero"`
	// NotCovered lists what the rule leaves unsigned: set when model
	// signing is all it binds the model by (see docs/POLICY.md).
	NotCovered []string `json:"notCovered,omitempty"`
}

// VerifyModel checks the referrer graph of the model manifest (a digest
// resolved once by the caller) in src against the policy rule matching the
// model's name: src's own PolicyName when src is an *oras.Target (the
// repository argument is then not used), else repository in the canonical
// form of oras.CanonicalRepository. The referrers listing only locates candidates: each one is
// re-read from its own manifest, and counts only when its bundle verifies
// against a trust anchor the rule names and its statement names the model.
// A failed enforced rule returns the report with a *PolicyError; warn and
// audit rules return the failing report with no error.
func VerifyModel(ctx context.Context, src orasgo.ReadOnlyGraphTarget, repository string, model ocispec.Descriptor, p *Policy, opts VerifyOptions) (*Report, error) {
	if p == nil || !p.compiled {
		// A literal Policy has no anchors loaded and no matchers built: it
		// would deny every model for a reason no one could see.
		return nil, fmt.Errorf("%w: the policy was never compiled: make it with LoadPolicy, ParsePolicy or CompilePolicy", ErrPolicy)
	}
	repository = policyName(src, repository)
	lim := opts.Limits.withDefaults()
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	rep := &Report{Repository: repository, Model: ocispec.Descriptor{MediaType: model.MediaType, Digest: model.Digest, Size: model.Size},
		Policy: p.Digest, Rule: -1, Mode: ModeEnforce, VerifiedAt: now.UTC(), Referrers: []Finding{}}
	rule, idx := p.Match(repository)
	if rule == nil {
		rep.Requirements = []Requirement{{What: "a policy rule", Reason: fmt.Sprintf("no rule matches %q: denied", repository)}}
		return rep, &PolicyError{rep}
	}
	rep.Rule, rep.Mode = idx, rule.Mode
	rep.NotCovered = rule.notCovered()
	if rule.Reject {
		rep.Requirements = []Requirement{{What: fmt.Sprintf("rule %d", idx), Reason: "the rule rejects every matching model"}}
		return rep, finish(rep)
	}
	m, _, err := oras.FetchManifest(ctx, src, model)
	if err != nil {
		return nil, err
	}

	anchors := rule.anchors()
	if err := discover(ctx, src, model, p, anchors, lim, rep); err != nil {
		if errors.Is(err, ErrGraphRefused) {
			rep.Requirements = append(rep.Requirements, Requirement{What: "referrer graph", Reason: err.Error()})
			return rep, finish(rep)
		}
		return nil, err
	}
	if err := legacySignatures(ctx, src, model, p, anchors, rep); err != nil {
		return nil, err
	}

	if s := rule.Signatures; s != nil {
		rep.Requirements = append(rep.Requirements, requireSigned(rep, "signatures", PredicateCosignSign, s.Signers, s.Threshold,
			func(*Finding) error { return nil }))
	}
	for _, a := range rule.Attestations {
		check := func(f *Finding) error { return nil }
		switch {
		case a.SLSA != nil:
			slsa := a.SLSA
			check = func(f *Finding) error { return checkSLSA(slsa, f.statement.Predicate, now) }
		case a.VSA != nil:
			vsa := a.VSA
			check = func(f *Finding) error { return checkVSA(vsa, f.statement.Predicate, model.Digest, now) }
		case a.PredicateType == PredicateModelSigning:
			cfg, cerr := omsConfig(ctx, src, m)
			check = func(f *Finding) error {
				if cerr != nil {
					return cerr
				}
				return CheckOMSModel(f.statement, *m, cfg)
			}
		}
		rep.Requirements = append(rep.Requirements, requireSigned(rep, "attestation "+a.PredicateType, a.PredicateType, a.Signers, a.Threshold, check))
	}
	rep.ValidUntil = validUntil(rep)
	return rep, finish(rep)
}

// validUntil is the earliest expiry among the findings the report's
// satisfied requirements counted (zero: none expires).
func validUntil(rep *Report) time.Time {
	counted := map[digest.Digest]bool{}
	for _, r := range rep.Requirements {
		if r.Satisfied {
			for _, d := range r.Referrers {
				counted[d] = true
			}
		}
	}
	var t time.Time
	for _, f := range rep.Referrers {
		if counted[f.Digest] {
			t = earliest(t, f.notAfter)
		}
	}
	return t.UTC()
}

func finish(rep *Report) error {
	rep.Passed = true
	for _, r := range rep.Requirements {
		rep.Passed = rep.Passed && r.Satisfied
	}
	if !rep.Passed && rep.Mode == ModeEnforce {
		return &PolicyError{rep}
	}
	return nil
}

// anchors lists every trust anchor the rule names, in a stable order.
func (r *Rule) anchors() []string {
	seen := map[string]bool{}
	var out []string
	add := func(names []string) {
		for _, n := range names {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	if r.Signatures != nil {
		add(r.Signatures.Signers)
	}
	for _, a := range r.Attestations {
		add(a.Signers)
	}
	sort.Strings(out)
	return out
}

// discover walks the referrers of the model (Walk: visited set, depth,
// fan-out and node bounds) and verifies every bundle it finds against the
// rule's anchors. A referrer that cannot be read as a signature is a
// rejected finding whose own referrers are not followed.
func discover(ctx context.Context, src orasgo.ReadOnlyGraphTarget, model ocispec.Descriptor, p *Policy, anchors []string, lim Limits, rep *Report) error {
	_, err := Walk(ctx, src, model, WalkOptions{Limits: lim}, func(ctx context.Context, n *Node) (bool, error) {
		parent := n.Parent.Descriptor
		f := Finding{Digest: n.Digest, Subject: parent.Digest, Depth: n.Depth}
		r, err := FetchReferrer(ctx, src, n.Descriptor, parent.Digest)
		if err != nil {
			f.Verdict, f.Reason = VerdictRejected, err.Error()
			rep.Referrers = append(rep.Referrers, f)
			return false, nil
		}
		f.ArtifactType = r.Manifest.ArtifactType
		f.PredicateType = r.PredicateType
		if r.Notation != nil {
			verifyNotationFinding(ctx, &f, r.Notation, parent, p, anchors)
		} else {
			f.Format = FormatSigstoreBundle
			verifyFinding(&f, r, parent.Digest, p, anchors)
			if f.statement != nil && f.PredicateType == PredicateModelSigning {
				f.bundle = r.Bundle
			}
		}
		rep.Referrers = append(rep.Referrers, f)
		return true, nil
	})
	return err
}

func verifyFinding(f *Finding, r *Referrer, subject digest.Digest, p *Policy, anchors []string) {
	if len(anchors) == 0 {
		f.Verdict, f.Reason = VerdictUntrusted, "the rule names no signer"
		return
	}
	// What does not depend on the signer is checked once per bundle.
	b, err := checkBundle(r.Bundle)
	if err != nil {
		f.Verdict, f.Reason = VerdictUntrusted, strings.TrimPrefix(err.Error(), ErrVerification.Error()+": ")
		return
	}
	var reasons []string
	for _, name := range anchors {
		var st *Statement
		var until time.Time
		if r.PredicateType == PredicateModelSigning && f.Depth == 1 {
			// A model-signing statement's subject is the digest over the
			// model's files, not the manifest: it is bound to this model by
			// CheckOMS against the manifest's layers, which the rule runs on
			// every model-signing statement it counts.
			st, until, err = p.verifiers[name].verifyParsedUntil(b, verify.WithoutArtifactUnsafe(), "")
			if err == nil && st.PredicateType != PredicateModelSigning {
				err = fmt.Errorf("statement is %s, not a model-signing statement", st.PredicateType)
			}
		} else {
			st, until, err = p.verifiers[name].verifySubjectUntil(b, subject)
		}
		if err != nil {
			reasons = append(reasons, strings.TrimPrefix(err.Error(), ErrVerification.Error()+": "))
			continue
		}
		f.notAfter = earliest(f.notAfter, until)
		f.verifiedBy(name, p.verifiers[name].signingKey(b))
		f.statement = st
		f.PredicateType = st.PredicateType
	}
	if len(f.VerifiedBy) > 0 {
		f.Verdict = VerdictVerified
	} else {
		f.Verdict, f.Reason = VerdictUntrusted, strings.Join(reasons, "; ")
	}
}

// requireSigned checks that statements of predicateType, verified by at
// least threshold distinct signers among signers and passing check, exist.
// Signers are counted by key: each signing key (a key anchor's key, or a
// certificate's leaf key) counts toward at most one anchor, chosen so that
// as many anchors as possible are met (a maximum assignment), so one key
// under two anchor names cannot meet a threshold of 2.
func requireSigned(rep *Report, what, predicateType string, signers []string, threshold int, check func(*Finding) error) Requirement {
	req := Requirement{What: what, PredicateType: predicateType}
	allowed := map[string]bool{}
	for _, s := range signers {
		allowed[s] = true
	}
	keyAnchors := map[string][]string{} // signing key → anchors it met
	var otherSigners, notMet []string
	var notMetBy []string
	for i := range rep.Referrers {
		f := &rep.Referrers[i]
		if f.Depth != 1 || !f.provides(predicateType) {
			continue
		}
		var ok []string
		for _, s := range f.VerifiedBy {
			if allowed[s] {
				ok = append(ok, s)
			}
		}
		if len(ok) == 0 {
			otherSigners = append(otherSigners, fmt.Sprintf("%s is signed by %s", short(f.Digest), strings.Join(f.VerifiedBy, ", ")))
			continue
		}
		if err := check(f); err != nil {
			notMet = append(notMet, fmt.Sprintf("%v (%s)", err, short(f.Digest)))
			notMetBy = append(notMetBy, ok...)
			if f.Reason == "" {
				f.Reason = err.Error()
			}
			continue
		}
		for _, s := range ok {
			k, named := f.keys[s]
			if !named {
				k = "referrer " + f.Digest.String() // a signature whose key is not named is its own signer
			}
			if !contains(keyAnchors[k], s) {
				keyAnchors[k] = append(keyAnchors[k], s)
			}
		}
		req.Referrers = append(req.Referrers, f.Digest)
	}
	met := maxAssignment(keyAnchors)
	for s := range met {
		req.By = append(req.By, s)
	}
	sort.Strings(req.By)
	req.Satisfied = len(req.By) >= threshold
	if req.Satisfied {
		return req
	}
	if len(req.By) == 0 && len(notMet) > 0 {
		req.Reason = fmt.Sprintf("signed by a trusted signer (%s), but does not meet the rule: %s", strings.Join(dedupe(notMetBy), ", "), notMet[0])
		if len(notMet) > 1 {
			req.Reason += fmt.Sprintf("; %d more such statements", len(notMet)-1)
		}
		return req
	}
	msg := fmt.Sprintf("%d of %d required distinct signers among %s", len(req.By), threshold, strings.Join(signers, ", "))
	var why []string
	if len(req.By) > 0 {
		why = append(why, "met by "+strings.Join(req.By, ", "))
	}
	explained := false
	if same := sharedKeys(keyAnchors, met); same != "" {
		why, explained = append(why, same), true
	}
	if len(notMet) > 0 {
		why, explained = append(why, "signed by a trusted signer, but does not meet the rule: "+notMet[0]), true
	}
	if len(otherSigners) > 0 {
		why, explained = append(why, otherSigners[0]+", which this requirement does not accept"), true
	}
	if !explained {
		if n := countUntrusted(rep); n > 0 {
			why = append(why, fmt.Sprintf("%d referrers did not verify against a trusted signer: %s", n, firstReason(rep)))
		} else if len(req.By) == 0 {
			why = append(why, "none found")
		}
	}
	req.Reason = msg + " (" + strings.Join(why, "; ") + ")"
	return req
}

// maxAssignment assigns each signing key to at most one anchor and each
// anchor to at most one key, as many anchors as possible (augmenting
// paths; the graphs here are tiny). It returns anchor → key.
func maxAssignment(keyAnchors map[string][]string) map[string]string {
	owner := map[string]string{}
	var assign func(key string, seen map[string]bool) bool
	assign = func(key string, seen map[string]bool) bool {
		for _, a := range keyAnchors[key] {
			if seen[a] {
				continue
			}
			seen[a] = true
			if k, taken := owner[a]; !taken || assign(k, seen) {
				owner[a] = key
				return true
			}
		}
		return false
	}
	keys := make([]string, 0, len(keyAnchors))
	for k := range keyAnchors {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		assign(k, map[string]bool{})
	}
	return owner
}

// sharedKeys explains anchors left unmet because their only signatures
// came from a key already counted for another anchor.
func sharedKeys(keyAnchors map[string][]string, met map[string]string) string {
	for _, anchors := range keyAnchors {
		if len(anchors) < 2 {
			continue
		}
		var unmet []string
		for _, a := range anchors {
			if _, ok := met[a]; !ok {
				unmet = append(unmet, a)
			}
		}
		if len(unmet) > 0 {
			return fmt.Sprintf("%s signed with the same key as another anchor (%s); one key counts as one signer", strings.Join(unmet, ", "), strings.Join(anchors, ", "))
		}
	}
	return ""
}

func dedupe(list []string) []string {
	var out []string
	for _, s := range list {
		if !contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func countUntrusted(rep *Report) int {
	n := 0
	for _, f := range rep.Referrers {
		if f.Depth == 1 && f.Verdict != VerdictVerified && f.Verdict != VerdictLegacy {
			n++
		}
	}
	return n
}

func firstReason(rep *Report) string {
	for _, f := range rep.Referrers {
		if f.Depth == 1 && f.Reason != "" && f.Verdict != VerdictVerified {
			return short(f.Digest) + ": " + f.Reason
		}
	}
	return ""
}

func short(d digest.Digest) string {
	if len(d.Encoded()) < 12 {
		return d.String()
	}
	return d.Algorithm().String() + ":" + d.Encoded()[:12]
}

// checkSLSA applies a rule's SLSA constraints to a verified predicate.
func checkSLSA(r *SLSARule, predicate json.RawMessage, now time.Time) error {
	var p struct {
		BuildDefinition struct {
			BuildType            string         `json:"buildType"`
			ExternalParameters   map[string]any `json:"externalParameters"`
			ResolvedDependencies []Dependency   `json:"resolvedDependencies"`
		} `json:"buildDefinition"`
		RunDetails struct {
			Builder struct {
				ID string `json:"id"`
			} `json:"builder"`
			Metadata struct {
				StartedOn  string `json:"startedOn"`
				FinishedOn string `json:"finishedOn"`
			} `json:"metadata"`
		} `json:"runDetails"`
	}
	if err := json.Unmarshal(predicate, &p); err != nil {
		return fmt.Errorf("SLSA predicate: %w", err)
	}
	if len(r.BuilderIDs) > 0 && !contains(r.BuilderIDs, p.RunDetails.Builder.ID) {
		return fmt.Errorf("builder id %q is not one of %s", p.RunDetails.Builder.ID, quoteList(r.BuilderIDs))
	}
	if len(r.BuildTypes) > 0 && !contains(r.BuildTypes, p.BuildDefinition.BuildType) {
		return fmt.Errorf("build type %q is not one of %s", p.BuildDefinition.BuildType, quoteList(r.BuildTypes))
	}
	for k, want := range r.ExternalParameters {
		got, ok := p.BuildDefinition.ExternalParameters[k]
		if !ok {
			return fmt.Errorf("external parameter %s is missing, want %q", k, want)
		}
		if s, isString := got.(string); !isString || s != want {
			js, _ := json.Marshal(got)
			return fmt.Errorf("external parameter %s is %s, want %q", k, js, want)
		}
	}
	for _, d := range r.Dependencies {
		if found, refused := hasDependency(p.BuildDefinition.ResolvedDependencies, d); !found {
			if refused != "" {
				return errors.New(refused)
			}
			want := d.URI
			if want == "" {
				want = d.URIPrefix + "…"
			}
			if len(d.Digest) > 0 {
				want += " with digest " + digestList(d.Digest)
			}
			return fmt.Errorf("no resolved dependency %s", want)
		}
	}
	if r.maxAge > 0 {
		ts := p.RunDetails.Metadata.FinishedOn
		if ts == "" {
			ts = p.RunDetails.Metadata.StartedOn
		}
		if ts == "" {
			return fmt.Errorf("maxAge %s: the provenance has no finishedOn or startedOn", r.MaxAge)
		}
		t, err := time.Parse(time.RFC3339, ts)
		if err != nil {
			return fmt.Errorf("maxAge: time %q: %w", ts, err)
		}
		if t.After(now.Add(5 * time.Minute)) {
			return fmt.Errorf("build time %s is in the future", ts)
		}
		if now.Sub(t) > r.maxAge {
			return fmt.Errorf("built %s, more than %s ago", ts, r.MaxAge)
		}
	}
	return nil
}

// hasDependency reports whether deps has one meeting want; when none does,
// refused says why a dependency under want's prefix was not taken (a dot
// segment, an encoded slash), if one was.
func hasDependency(deps []Dependency, want DependencyRule) (found bool, refused string) {
	for _, d := range deps {
		if want.URI != "" && d.URI != want.URI {
			continue
		}
		if want.URIPrefix != "" {
			under, err := underPrefix(d.URI, want.prefix)
			if err != nil && refused == "" {
				refused = err.Error()
			}
			if !under {
				continue
			}
		}
		ok := true
		for alg, v := range want.Digest {
			ok = ok && d.Digest[alg] == v
		}
		if ok {
			return true, ""
		}
	}
	return false, refused
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// quoteList prints names as "a", "b" for a reason (never Go's [a b]).
func quoteList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// digestList prints digests as sha256:…, sorted by algorithm.
func digestList(d map[string]string) string {
	var out []string
	for alg, v := range d {
		out = append(out, alg+":"+v)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}
