package referrers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/modelattest/modelattest/internal/glob"
	"github.com/modelattest/modelattest/oras"
)

// ErrPolicy is wrapped by every error about a policy that cannot be used:
// unknown keys, an unknown anchor, an unreadable key, a bad regexp, a
// Policy that was never compiled.
var ErrPolicy = errors.New("invalid policy")

// Policy says which models are trusted: named trust anchors, then rules
// matched by reference, first match wins, deny when nothing matches. The
// same file is read by the CLI and the library.
//
// A Policy is used only once compiled: LoadPolicy and ParsePolicy compile
// what they read, and CompilePolicy compiles one built in code. VerifyModel
// refuses a Policy that was never compiled.
type Policy struct {
	Version int               `json:"version"`
	Trust   map[string]Anchor `json:"trust,omitempty"`
	Models  []Rule            `json:"models"`
	// Admission is the Kubernetes admission webhook's section (scope,
	// exemptions): package admission reads it from the same file;
	// verification ignores it.
	Admission json.RawMessage `json:"admission,omitempty"`
	// Runtime is the TEE requirements section, read by package runtime
	// (runtime.LoadRequirements) from the same file; kept raw here.
	Runtime json.RawMessage `json:"runtime,omitempty"`

	// Digest names the policy in a verification summary: the sha256 of the
	// file as read, or, for a policy built in code and left empty here, the
	// sha256 of its JSON encoding.
	Digest    digest.Digest `json:"-"`
	verifiers map[string]*Verifier
	compiled  bool
}

// Anchor is one trusted signer written in a policy file; exactly one kind
// is set. anchorKinds (anchors.go) lists the kinds and how each is loaded.
type Anchor struct {
	// Key is a public key file (PEM, cosign.pub) or a KMS URI.
	Key     string         `json:"key,omitempty"`
	X509    *X509Anchor    `json:"x509,omitempty"`
	Keyless *KeylessAnchor `json:"keyless,omitempty"`
	// Notation trusts Notary Project signatures (notation.go).
	Notation *NotationAnchor `json:"notation,omitempty"`
}

// X509Anchor trusts a company PKI; X509Constraints says what each field
// means.
type X509Anchor struct {
	// Roots is a PEM file of root certificates.
	Roots string `json:"roots"`
	// Subject is an RFC 4514 distinguished name: each attribute it names
	// must occur exactly once in the leaf's subject, with this value.
	Subject string   `json:"subject,omitempty"`
	SANs    []string `json:"sans,omitempty"`
	// AllowMissingCodeSigningEKU accepts a leaf with no extended key usage
	// at all (an older PKI); by default codeSigning is required.
	AllowMissingCodeSigningEKU bool `json:"allowMissingCodeSigningEKU,omitempty"`
	// CRLs are CRL files (PEM or DER); when given, every certificate below
	// the root must be covered by its issuer's CRL and not revoked.
	CRLs []string `json:"crls,omitempty"`
	// CRLGracePeriod is how long past its nextUpdate a CRL is still used
	// (Go duration, "24h"); by default a stale CRL fails closed.
	CRLGracePeriod string `json:"crlGracePeriod,omitempty"`
}

// KeylessAnchor trusts a keyless identity under a Sigstore trusted root.
type KeylessAnchor struct {
	Issuer        string `json:"issuer,omitempty"`
	IssuerRegExp  string `json:"issuerRegExp,omitempty"`
	Subject       string `json:"subject,omitempty"`
	SubjectRegExp string `json:"subjectRegExp,omitempty"`
	TrustedRoot   string `json:"trustedRoot"`
}

// Mode says what a failed rule does.
type Mode string

// The modes of a rule.
const (
	// ModeEnforce refuses a model that fails the rule (the default).
	ModeEnforce Mode = "enforce"
	// ModeWarn lets it through with warnings.
	ModeWarn Mode = "warn"
	// ModeAudit only reports.
	ModeAudit Mode = "audit"
)

// Rule is what a matching model must carry.
type Rule struct {
	// Match lists reference globs: * within a path segment, ** across
	// segments ("harbor.acme.example/models/**").
	Match []string `json:"match"`
	// Mode is what a failure does; empty means ModeEnforce.
	Mode Mode `json:"mode,omitempty"`
	// Reject refuses every matching model.
	Reject       bool              `json:"reject,omitempty"`
	Signatures   *SignatureRule    `json:"signatures,omitempty"`
	Attestations []AttestationRule `json:"attestations,omitempty"`

	match []*regexp.Regexp
}

// SignatureRule requires signatures (cosign's predicate, or legacy .sig
// tags) from Threshold distinct anchors among Signers.
type SignatureRule struct {
	Signers []string `json:"signers"`
	// Threshold is how many distinct signers must sign; 0 means 1.
	Threshold int `json:"threshold,omitempty"`
}

// AttestationRule requires a verified attestation of PredicateType signed
// by one of Signers (Threshold distinct ones), meeting SLSA when given.
// An OpenSSF model-signing attestation is also checked against every file
// of the manifest.
type AttestationRule struct {
	PredicateType string   `json:"predicateType"`
	Signers       []string `json:"signers"`
	// Threshold is how many distinct signers must attest; 0 means 1.
	Threshold int       `json:"threshold,omitempty"`
	SLSA      *SLSARule `json:"slsa,omitempty"`
	// VSA is required for a verification summary requirement: which
	// verifiers, policies and ages make a summary count.
	VSA *VSARule `json:"vsa,omitempty"`
}

// VSARule says which SLSA verification summaries count. A summary counts
// only when its verificationResult is PASSED, its subject and resourceUri
// name the model's digest (the repository in resourceUri may differ: a
// copy, an air gap), its verifier id is one of VerifierIDs, its policy
// digest one of PolicyDigests and it is younger than MaxAge. Every field is
// required.
type VSARule struct {
	// VerifierIDs are the verifier ids accepted (verify --verifier-id).
	VerifierIDs []string `json:"verifierIDs"`
	// PolicyDigests are the digests of the policies whose decisions are
	// accepted ("sha256:…", as verify reports its policy).
	PolicyDigests []string `json:"policyDigests"`
	// MaxAge bounds how long ago the summary was made (Go duration, "24h").
	MaxAge string `json:"maxAge"`

	maxAge time.Duration
}

// SLSARule constrains a SLSA provenance v1 predicate.
type SLSARule struct {
	BuilderIDs   []string         `json:"builderIDs,omitempty"`
	BuildTypes   []string         `json:"buildTypes,omitempty"`
	Dependencies []DependencyRule `json:"dependencies,omitempty"`
	// MaxAge bounds how long ago the build finished (Go duration, "720h").
	MaxAge string `json:"maxAge,omitempty"`
	// ExternalParameters must be present with exactly these values
	// (source repository, ref, …).
	ExternalParameters map[string]string `json:"externalParameters,omitempty"`

	maxAge time.Duration
}

// DependencyRule requires a resolved dependency: by exact URI, or by URI
// prefix, and with these digests when given.
type DependencyRule struct {
	// URI must equal the dependency's uri exactly.
	URI string `json:"uri,omitempty"`
	// URIPrefix is a URL (scheme, host, path) the dependency must lie under:
	// same scheme and host, and the prefix's path a whole-segment prefix of
	// the dependency's ("…/approved" does not cover "…/approved-evil/x").
	// A dependency whose path has a dot segment ("..", also
	// percent-encoded) or an encoded slash is refused.
	URIPrefix string            `json:"uriPrefix,omitempty"`
	Digest    map[string]string `json:"digest,omitempty"`

	prefix *url.URL
}

// LoadPolicy reads and checks a policy file. The checks here are the whole
// of referrers/policy.schema.json and more (anchors that exist and load,
// regexps that compile, thresholds within the signers); the schema is the
// format's description for editors and linters, kept in step by a test.
// Relative paths in it resolve against its folder. Every key, root and
// trusted root is loaded now: a policy that names an unknown anchor, an
// unreadable key or a bad regexp is an error here, never a rule that
// silently matches nothing.
func LoadPolicy(ctx context.Context, file string) (*Policy, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	return ParsePolicy(ctx, raw, filepath.Dir(file))
}

// ParsePolicy is LoadPolicy for bytes already read; dir resolves relative
// paths. It decodes the text strictly (DecodePolicy), loads the trust
// anchors (LoadAnchors) and compiles the rules against them (CompilePolicy).
func ParsePolicy(ctx context.Context, raw []byte, dir string) (*Policy, error) {
	p, err := DecodePolicy(raw)
	if err != nil {
		return nil, err
	}
	anchors, err := LoadAnchors(ctx, p.Trust, dir)
	if err != nil {
		return nil, err
	}
	p.Digest = digest.FromBytes(raw)
	return CompilePolicy(p, anchors)
}

// CompilePolicy checks a policy and readies it for VerifyModel, with the
// trust anchors given in memory: a rule may name any anchor in anchors (by
// its key in the map). This is how a policy is built in code, without a
// file, as sigstore-go builds a verification policy; ParsePolicy ends here
// too. p.Trust is the file form of anchors and is not loaded here
// (LoadAnchors does that), but every name in it must be in anchors, so
// that no anchor written down is silently dropped. p is not modified: the
// compiled copy is returned.
func CompilePolicy(p *Policy, anchors map[string]*Verifier) (*Policy, error) {
	if p == nil {
		return nil, fmt.Errorf("%w: no policy", ErrPolicy)
	}
	if p.Version != 1 {
		return nil, fmt.Errorf("%w: version %d, want 1", ErrPolicy, p.Version)
	}
	for name := range p.Trust {
		if anchors[name] == nil {
			return nil, fmt.Errorf("%w: trust anchor %q is written in the policy but not loaded (LoadAnchors loads them)", ErrPolicy, name)
		}
	}
	c := *p
	c.verifiers = map[string]*Verifier{}
	for name, v := range anchors {
		if v == nil {
			return nil, fmt.Errorf("%w: trust anchor %q has no verifier", ErrPolicy, name)
		}
		c.verifiers[name] = v
	}
	if len(p.Models) == 0 {
		return nil, fmt.Errorf("%w: no models rules", ErrPolicy)
	}
	c.Models = make([]Rule, len(p.Models))
	for i, r := range p.Models {
		compiled, err := c.compileRule(r, fmt.Sprintf("models[%d]", i))
		if err != nil {
			return nil, err
		}
		c.Models[i] = compiled
	}
	if c.Digest == "" {
		js, err := json.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrPolicy, err)
		}
		c.Digest = digest.FromBytes(js)
	}
	c.compiled = true
	return &c, nil
}

// compileRule checks one rule and returns a copy with its matchers built;
// the caller's rule and what it points to are left as they are.
func (p *Policy) compileRule(r Rule, where string) (Rule, error) {
	if err := compileMatch(&r, where); err != nil {
		return r, err
	}
	switch r.Mode {
	case "":
		r.Mode = ModeEnforce
	case ModeEnforce, ModeWarn, ModeAudit:
	default:
		return r, fmt.Errorf("%w: %s: mode %q: want enforce, warn or audit", ErrPolicy, where, r.Mode)
	}
	if r.Reject {
		return r, nil
	}
	if r.Signatures == nil && len(r.Attestations) == 0 {
		return r, fmt.Errorf("%w: %s: requires nothing; say reject: true, or require signatures or attestations", ErrPolicy, where)
	}
	if r.Signatures != nil {
		s, err := p.compileSignatures(*r.Signatures, where+".signatures")
		if err != nil {
			return r, err
		}
		r.Signatures = &s
	}
	atts := make([]AttestationRule, len(r.Attestations))
	for j, a := range r.Attestations {
		var err error
		if atts[j], err = p.compileAttestation(a, fmt.Sprintf("%s.attestations[%d]", where, j)); err != nil {
			return r, err
		}
	}
	if r.Attestations != nil {
		r.Attestations = atts
	}
	return r, nil
}

// compileMatch builds the rule's matchers from its globs.
func compileMatch(r *Rule, where string) error {
	if len(r.Match) == 0 {
		return fmt.Errorf("%w: %s: no match patterns", ErrPolicy, where)
	}
	r.match = nil
	for _, g := range r.Match {
		// Globs are matched against canonical names, so they are put in
		// canonical form too: LOCALHOST:5601 and localhost:5601 are one host.
		re, err := glob.Compile(oras.CanonicalPattern(g))
		if err != nil {
			return fmt.Errorf("%w: %s: match %q: %w", ErrPolicy, where, g, err)
		}
		r.match = append(r.match, re)
	}
	return nil
}

// compileSignatures checks a signatures requirement.
func (p *Policy) compileSignatures(s SignatureRule, where string) (SignatureRule, error) {
	err := p.checkSigners(where, s.Signers, &s.Threshold)
	return s, err
}

// compileAttestation checks an attestation requirement and the predicate
// checks it carries.
func (p *Policy) compileAttestation(a AttestationRule, where string) (AttestationRule, error) {
	if a.PredicateType == "" {
		return a, fmt.Errorf("%w: %s: no predicateType", ErrPolicy, where)
	}
	pt, err := ResolvePredicateType(a.PredicateType)
	if err != nil {
		return a, fmt.Errorf("%w: %s: %w", ErrPolicy, where, err)
	}
	a.PredicateType = pt
	if err := p.checkSigners(where, a.Signers, &a.Threshold); err != nil {
		return a, err
	}
	if a.SLSA != nil {
		if a.PredicateType != PredicateSLSAProvenance {
			return a, fmt.Errorf("%w: %s: slsa checks need predicateType %s", ErrPolicy, where, PredicateSLSAProvenance)
		}
		s, err := compileSLSA(*a.SLSA, where+".slsa")
		if err != nil {
			return a, err
		}
		a.SLSA = &s
	}
	switch {
	case a.PredicateType == PredicateVSA && a.VSA == nil:
		return a, fmt.Errorf("%w: %s: a verification summary requirement needs a vsa block (verifierIDs, policyDigests, maxAge): without it any summary, even FAILED or made under another policy, would count", ErrPolicy, where)
	case a.VSA != nil && a.PredicateType != PredicateVSA:
		return a, fmt.Errorf("%w: %s: vsa checks need predicateType %s", ErrPolicy, where, PredicateVSA)
	case a.VSA != nil:
		v, err := compileVSA(*a.VSA, where+".vsa")
		if err != nil {
			return a, err
		}
		a.VSA = &v
	}
	return a, nil
}

// compileVSA checks a rule's verification summary constraints.
func compileVSA(v VSARule, where string) (VSARule, error) {
	if len(v.VerifierIDs) == 0 {
		return v, fmt.Errorf("%w: %s: no verifierIDs", ErrPolicy, where)
	}
	if len(v.PolicyDigests) == 0 {
		return v, fmt.Errorf("%w: %s: no policyDigests", ErrPolicy, where)
	}
	for _, d := range v.PolicyDigests {
		if _, err := digest.Parse(d); err != nil {
			return v, fmt.Errorf("%w: %s: policy digest %q: want sha256:<64 hex digits>", ErrPolicy, where, d)
		}
	}
	d, err := time.ParseDuration(v.MaxAge)
	if err != nil || d <= 0 {
		return v, fmt.Errorf("%w: %s: maxAge %q: want a positive Go duration such as 24h", ErrPolicy, where, v.MaxAge)
	}
	v.maxAge = d
	return v, nil
}

// compileSLSA checks a rule's SLSA provenance constraints.
func compileSLSA(s SLSARule, where string) (SLSARule, error) {
	s.Dependencies = append([]DependencyRule(nil), s.Dependencies...)
	if s.MaxAge != "" {
		d, err := time.ParseDuration(s.MaxAge)
		if err != nil || d <= 0 {
			return s, fmt.Errorf("%w: %s: maxAge %q: want a positive Go duration such as 720h", ErrPolicy, where, s.MaxAge)
		}
		s.maxAge = d
	}
	for k := range s.Dependencies {
		d := &s.Dependencies[k]
		dw := fmt.Sprintf("%s.dependencies[%d]", where, k)
		if (d.URI == "") == (d.URIPrefix == "") {
			return s, fmt.Errorf("%w: %s: want exactly one of uri, uriPrefix", ErrPolicy, dw)
		}
		if d.URIPrefix != "" {
			u, err := parsePrefix(d.URIPrefix)
			if err != nil {
				return s, fmt.Errorf("%w: %s: uriPrefix %q: %w", ErrPolicy, dw, d.URIPrefix, err)
			}
			d.prefix = u
		}
		for alg, v := range d.Digest {
			if !lowerHex.MatchString(v) {
				return s, fmt.Errorf("%w: %s: %s digest %q is not lowercase hex", ErrPolicy, dw, alg, v)
			}
		}
	}
	return s, nil
}

func (p *Policy) checkSigners(where string, signers []string, threshold *int) error {
	if len(signers) == 0 {
		return fmt.Errorf("%w: %s: no signers", ErrPolicy, where)
	}
	for _, s := range signers {
		if _, ok := p.verifiers[s]; !ok {
			return fmt.Errorf("%w: %s: signer %q is not a trust anchor", ErrPolicy, where, s)
		}
	}
	if *threshold == 0 {
		*threshold = 1
	}
	if *threshold < 1 || *threshold > len(signers) {
		return fmt.Errorf("%w: %s: threshold %d with %d signers", ErrPolicy, where, *threshold, len(signers))
	}
	return nil
}

// Match returns the first rule matching repository (host/name, no tag or
// digest), or nil: no rule means the model is denied.
func (p *Policy) Match(repository string) (*Rule, int) {
	for i := range p.Models {
		for _, re := range p.Models[i].match {
			if re.MatchString(repository) {
				return &p.Models[i], i
			}
		}
	}
	return nil, -1
}

// Verifier returns the verifier of a trust anchor.
func (p *Policy) Verifier(name string) *Verifier { return p.verifiers[name] }
