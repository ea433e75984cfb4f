package referrers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// anchorKind is one kind of trust anchor a policy file may write: the key
// it is written under, whether an Anchor sets it, and the one function
// that loads it into a Verifier.
type anchorKind struct {
	name string
	set  func(Anchor) bool
	load func(ctx context.Context, name string, a Anchor, files policyFiles) (*Verifier, error)
}

// anchorKinds lists every kind of trust anchor. Adding a kind is a field on
// Anchor, an entry here and its load function below (and its shape in
// policy.schema.json and docs/POLICY.md).
var anchorKinds = []anchorKind{
	{"key", func(a Anchor) bool { return a.Key != "" }, loadKeyAnchor},
	{"x509", func(a Anchor) bool { return a.X509 != nil }, loadX509Anchor},
	{"keyless", func(a Anchor) bool { return a.Keyless != nil }, loadKeylessAnchor},
	{"notation", func(a Anchor) bool { return a.Notation != nil }, loadNotationAnchor},
}

// policyFiles resolves the paths a policy names against its folder.
type policyFiles struct{ dir string }

// path resolves a relative path against the policy's folder; absolute
// paths and URIs (a KMS key) are returned as they are.
func (f policyFiles) path(p string) string {
	if p == "" || strings.Contains(p, "://") || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(f.dir, p)
}

// read reads a file the policy names.
func (f policyFiles) read(p string) ([]byte, error) {
	if p == "" {
		return nil, fmt.Errorf("no file named")
	}
	return os.ReadFile(f.path(p))
}

// LoadAnchors loads the trust anchors written in a policy file (its trust
// section); dir resolves relative paths. Each anchor must set exactly one
// kind. The result is what CompilePolicy takes.
func LoadAnchors(ctx context.Context, trust map[string]Anchor, dir string) (map[string]*Verifier, error) {
	names := make([]string, 0, len(trust))
	for name := range trust {
		names = append(names, name)
	}
	sort.Strings(names) // the first error is the same on every run
	out := make(map[string]*Verifier, len(trust))
	for _, name := range names {
		v, err := loadAnchor(ctx, name, trust[name], policyFiles{dir})
		if err != nil {
			return nil, fmt.Errorf("%w: trust anchor %q: %w", ErrPolicy, name, err)
		}
		out[name] = v
	}
	return out, nil
}

func loadAnchor(ctx context.Context, name string, a Anchor, files policyFiles) (*Verifier, error) {
	var kind *anchorKind
	var names []string
	n := 0
	for i := range anchorKinds {
		names = append(names, anchorKinds[i].name)
		if anchorKinds[i].set(a) {
			kind = &anchorKinds[i]
			n++
		}
	}
	if n != 1 {
		return nil, fmt.Errorf("want exactly one of %s", strings.Join(names, ", "))
	}
	return kind.load(ctx, name, a, files)
}

// loadKeyAnchor loads a `key:` anchor: a PEM public key file or a KMS URI.
func loadKeyAnchor(ctx context.Context, name string, a Anchor, files policyFiles) (*Verifier, error) {
	return LoadKeyVerifier(ctx, name, files.path(a.Key))
}

// loadX509Anchor loads an `x509:` anchor: a company PKI's roots and the
// constraints on its leaf certificates.
func loadX509Anchor(_ context.Context, name string, a Anchor, files policyFiles) (*Verifier, error) {
	x := a.X509
	roots, err := files.read(x.Roots)
	if err != nil {
		return nil, fmt.Errorf("roots: %w", err)
	}
	c := X509Constraints{Subject: x.Subject, SANs: x.SANs, AllowMissingCodeSigningEKU: x.AllowMissingCodeSigningEKU}
	for i, f := range x.CRLs {
		crl, err := files.read(f)
		if err != nil {
			return nil, fmt.Errorf("crls[%d]: %w", i, err)
		}
		c.CRLs = append(c.CRLs, crl)
	}
	if x.CRLGracePeriod != "" {
		if len(x.CRLs) == 0 {
			return nil, fmt.Errorf("crlGracePeriod without crls")
		}
		if c.CRLGracePeriod, err = time.ParseDuration(x.CRLGracePeriod); err != nil || c.CRLGracePeriod <= 0 {
			return nil, fmt.Errorf("crlGracePeriod %q: want a positive Go duration such as 24h", x.CRLGracePeriod)
		}
	}
	return NewX509Verifier(name, roots, c)
}

// loadKeylessAnchor loads a `keyless:` anchor: an OIDC identity under a
// Sigstore trusted root.
func loadKeylessAnchor(_ context.Context, name string, a Anchor, files policyFiles) (*Verifier, error) {
	k := a.Keyless
	if k.Issuer == "" && k.IssuerRegExp == "" || k.Subject == "" && k.SubjectRegExp == "" {
		return nil, fmt.Errorf("keyless needs an issuer and a subject (exact or regexp)")
	}
	tr, err := files.read(k.TrustedRoot)
	if err != nil {
		return nil, fmt.Errorf("trustedRoot: %w", err)
	}
	return NewKeylessVerifier(name, tr, KeylessIdentity{Issuer: k.Issuer, IssuerRegExp: k.IssuerRegExp,
		Subject: k.Subject, SubjectRegExp: k.SubjectRegExp})
}
