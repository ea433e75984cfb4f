package referrers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"sigs.k8s.io/yaml"
)

// ErrPolicy is wrapped by every error about a policy file that cannot be
// used: unknown keys, an unknown anchor, an unreadable key, a bad regexp.
var ErrPolicy = errors.New("invalid policy")

// Policy says which models are trusted: named trust anchors, then rules
// matched by reference, first match wins, deny when nothing matches. The
// same file is read by the CLI and the library.
type Policy struct {
	Version int               `json:"version"`
	Trust   map[string]Anchor `json:"trust"`
	Models  []Rule            `json:"models"`

	// Digest is the sha256 of the policy file as read: a verification
	// summary names it.
	Digest    digest.Digest `json:"-"`
	verifiers map[string]*Verifier
}

// Anchor is one trusted signer; exactly one of Key, X509, Keyless is set.
type Anchor struct {
	// Key is a public key file (PEM, cosign.pub) or a KMS URI.
	Key     string         `json:"key,omitempty"`
	X509    *X509Anchor    `json:"x509,omitempty"`
	Keyless *KeylessAnchor `json:"keyless,omitempty"`
}

// X509Anchor trusts a company PKI.
type X509Anchor struct {
	Roots   string   `json:"roots"`
	Subject string   `json:"subject,omitempty"`
	SANs    []string `json:"sans,omitempty"`
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
	Mode  Mode     `json:"mode,omitempty"`
	// Reject refuses every matching model.
	Reject       bool              `json:"reject,omitempty"`
	Signatures   *SignatureRule    `json:"signatures,omitempty"`
	Attestations []AttestationRule `json:"attestations,omitempty"`

	match []*regexp.Regexp
}

// SignatureRule requires signatures (cosign's predicate, or legacy .sig
// tags) from Threshold distinct anchors among Signers.
type SignatureRule struct {
	Signers   []string `json:"signers"`
	Threshold int      `json:"threshold,omitempty"`
}

// AttestationRule requires a verified attestation of PredicateType signed
// by one of Signers (Threshold distinct ones), meeting SLSA when given.
// An OpenSSF model-signing attestation is also checked against every file
// of the manifest.
type AttestationRule struct {
	PredicateType string    `json:"predicateType"`
	Signers       []string  `json:"signers"`
	Threshold     int       `json:"threshold,omitempty"`
	SLSA          *SLSARule `json:"slsa,omitempty"`
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
	URI       string            `json:"uri,omitempty"`
	URIPrefix string            `json:"uriPrefix,omitempty"`
	Digest    map[string]string `json:"digest,omitempty"`
}

// LoadPolicy reads and checks a policy file. The checks here are the whole
// of referrers/policy.schema.json and more (anchors that exist and load,
// regexps that compile, thresholds within the signers); the schema is the
// format's description for editors and linters, kept in step by a test. Relative paths in it resolve
// against its folder. Every key, root and trusted root is loaded now: a
// policy that names an unknown anchor, an unreadable key or a bad regexp
// is an error here, never a rule that silently matches nothing.
func LoadPolicy(ctx context.Context, file string) (*Policy, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPolicy, err)
	}
	return ParsePolicy(ctx, raw, filepath.Dir(file))
}

// ParsePolicy is LoadPolicy for bytes already read; dir resolves relative paths.
func ParsePolicy(ctx context.Context, raw []byte, dir string) (*Policy, error) {
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPolicy, err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	var p Policy
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPolicy, err)
	}
	p.Digest = digest.FromBytes(raw)
	if p.Version != 1 {
		return nil, fmt.Errorf("%w: version %d, want 1", ErrPolicy, p.Version)
	}
	resolve := func(path string) string {
		if path == "" || strings.Contains(path, "://") || filepath.IsAbs(path) {
			return path
		}
		return filepath.Join(dir, path)
	}
	p.verifiers = map[string]*Verifier{}
	for name, a := range p.Trust {
		n := 0
		for _, set := range []bool{a.Key != "", a.X509 != nil, a.Keyless != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			return nil, fmt.Errorf("%w: trust anchor %q: want exactly one of key, x509, keyless", ErrPolicy, name)
		}
		var v *Verifier
		switch {
		case a.Key != "":
			v, err = LoadKeyVerifier(ctx, name, resolve(a.Key))
		case a.X509 != nil:
			var roots []byte
			if roots, err = os.ReadFile(resolve(a.X509.Roots)); err == nil {
				v, err = NewX509Verifier(name, roots, X509Constraints{Subject: a.X509.Subject, SANs: a.X509.SANs})
			}
		case a.Keyless != nil:
			k := a.Keyless
			if k.Issuer == "" && k.IssuerRegExp == "" || k.Subject == "" && k.SubjectRegExp == "" {
				return nil, fmt.Errorf("%w: trust anchor %q: keyless needs an issuer and a subject (exact or regexp)", ErrPolicy, name)
			}
			var tr []byte
			if tr, err = os.ReadFile(resolve(k.TrustedRoot)); err == nil {
				v, err = NewKeylessVerifier(name, tr, KeylessIdentity{Issuer: k.Issuer, IssuerRegExp: k.IssuerRegExp,
					Subject: k.Subject, SubjectRegExp: k.SubjectRegExp})
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%w: trust anchor %q: %v", ErrPolicy, name, err)
		}
		p.verifiers[name] = v
	}
	if len(p.Models) == 0 {
		return nil, fmt.Errorf("%w: no models rules", ErrPolicy)
	}
	for i := range p.Models {
		r := &p.Models[i]
		where := fmt.Sprintf("models[%d]", i)
		if len(r.Match) == 0 {
			return nil, fmt.Errorf("%w: %s: no match patterns", ErrPolicy, where)
		}
		for _, g := range r.Match {
			re, err := globRegexp(g)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: match %q: %v", ErrPolicy, where, g, err)
			}
			r.match = append(r.match, re)
		}
		switch r.Mode {
		case "":
			r.Mode = ModeEnforce
		case ModeEnforce, ModeWarn, ModeAudit:
		default:
			return nil, fmt.Errorf("%w: %s: mode %q: want enforce, warn or audit", ErrPolicy, where, r.Mode)
		}
		if r.Reject {
			continue
		}
		if r.Signatures == nil && len(r.Attestations) == 0 {
			return nil, fmt.Errorf("%w: %s: requires nothing; say reject: true, or require signatures or attestations", ErrPolicy, where)
		}
		if s := r.Signatures; s != nil {
			if err := p.checkSigners(where+".signatures", s.Signers, &s.Threshold); err != nil {
				return nil, err
			}
		}
		for j := range r.Attestations {
			a := &r.Attestations[j]
			aw := fmt.Sprintf("%s.attestations[%d]", where, j)
			if a.PredicateType == "" {
				return nil, fmt.Errorf("%w: %s: no predicateType", ErrPolicy, aw)
			}
			a.PredicateType = PredicateType(a.PredicateType)
			if err := p.checkSigners(aw, a.Signers, &a.Threshold); err != nil {
				return nil, err
			}
			if a.SLSA != nil {
				if a.PredicateType != PredicateSLSAProvenance {
					return nil, fmt.Errorf("%w: %s: slsa checks need predicateType %s", ErrPolicy, aw, PredicateSLSAProvenance)
				}
				if a.SLSA.MaxAge != "" {
					if a.SLSA.maxAge, err = time.ParseDuration(a.SLSA.MaxAge); err != nil || a.SLSA.maxAge <= 0 {
						return nil, fmt.Errorf("%w: %s: maxAge %q: want a positive Go duration such as 720h", ErrPolicy, aw, a.SLSA.MaxAge)
					}
				}
				for k, d := range a.SLSA.Dependencies {
					if (d.URI == "") == (d.URIPrefix == "") {
						return nil, fmt.Errorf("%w: %s.slsa.dependencies[%d]: want exactly one of uri, uriPrefix", ErrPolicy, aw, k)
					}
					for alg, v := range d.Digest {
						if !lowerHex.MatchString(v) {
							return nil, fmt.Errorf("%w: %s.slsa.dependencies[%d]: %s digest %q is not lowercase hex", ErrPolicy, aw, k, alg, v)
						}
					}
				}
			}
		}
	}
	return &p, nil
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

// globRegexp turns a reference glob into an anchored regexp: ** matches
// anything, * and ? stay within a path segment.
func globRegexp(g string) (*regexp.Regexp, error) {
	if g == "" {
		return nil, errors.New("empty pattern")
	}
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(g); i++ {
		switch c := g[i]; {
		case c == '*' && i+1 < len(g) && g[i+1] == '*':
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
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
