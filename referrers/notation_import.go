package referrers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"
)

// ErrImport is wrapped by every error about a notation configuration that
// cannot be turned into a policy.
var ErrImport = errors.New("notation configuration")

// notaryTrustPolicy is one statement of notation's trustpolicy.json.
type notaryTrustPolicy struct {
	Name                  string   `json:"name"`
	RegistryScopes        []string `json:"registryScopes"`
	SignatureVerification struct {
		Level           string            `json:"level"`
		Override        map[string]string `json:"override,omitempty"`
		VerifyTimestamp string            `json:"verifyTimestamp,omitempty"`
	} `json:"signatureVerification"`
	TrustStores       []string `json:"trustStores"`
	TrustedIdentities []string `json:"trustedIdentities"`
}

var anchorNameSafe = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// ImportNotation reads a notation configuration folder (what notation
// keeps in ~/.config/notation: trustpolicy.oci.json or trustpolicy.json,
// and truststore/x509/{ca,signingAuthority,tsa}/NAME/) and returns the
// equivalent policy YAML. Each trust policy becomes a notation anchor and a
// rule requiring one signature from it; registry scopes become match
// patterns (specific scopes first, "*" last, as notation prefers the
// specific one); levels map to rule modes as docs/POLICY.md says. Trust
// store folders are named by absolute path. The result is loaded once
// before it is returned, so what is printed is a policy that loads.
func ImportNotation(ctx context.Context, dir string) ([]byte, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrImport, err)
	}
	file := filepath.Join(abs, "trustpolicy.oci.json")
	raw, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		file = filepath.Join(abs, "trustpolicy.json")
		raw, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrImport, err)
	}
	var doc struct {
		Version       string              `json:"version"`
		TrustPolicies []notaryTrustPolicy `json:"trustPolicies"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrImport, file, err)
	}
	if doc.Version != "1.0" || len(doc.TrustPolicies) == 0 {
		return nil, fmt.Errorf("%w: %s: want version 1.0 and at least one trust policy", ErrImport, file)
	}
	p := Policy{Version: 1, Trust: map[string]Anchor{}}
	var specific, wildcard []Rule
	var notes []string
	for _, tp := range doc.TrustPolicies {
		where := fmt.Sprintf("%s: trust policy %q", file, tp.Name)
		if len(tp.SignatureVerification.Override) > 0 {
			return nil, fmt.Errorf("%w: %s: an override of the %s level cannot be expressed here; remove it or edit the imported policy by hand", ErrImport, where, tp.SignatureVerification.Level)
		}
		var mode Mode
		level := NotationLevelStrict
		switch tp.SignatureVerification.Level {
		case "strict":
			mode = ModeEnforce
		case "permissive":
			mode, level = ModeEnforce, NotationLevelPermissive
		case "audit":
			mode = ModeAudit
		case "skip":
			mode = ModeAudit
		default:
			return nil, fmt.Errorf("%w: %s: level %q: want strict, permissive, audit or skip", ErrImport, where, tp.SignatureVerification.Level)
		}
		var match []string
		for _, s := range tp.RegistryScopes {
			if s == "*" {
				match = append(match, "**")
			} else {
				match = append(match, s)
			}
		}
		if len(match) == 0 {
			return nil, fmt.Errorf("%w: %s: no registryScopes", ErrImport, where)
		}
		r := Rule{Match: match}
		if mode != ModeEnforce {
			r.Mode = mode
		}
		if tp.SignatureVerification.Level == "skip" {
			// notation verifies nothing here; a policy never skips silently:
			// every matching model is reported as unverified, not refused.
			r.Reject = true
			notes = append(notes, fmt.Sprintf("trust policy %q is level skip: its models are reported unverified (reject, audit mode), never refused", tp.Name))
		} else {
			name := anchorNameSafe.ReplaceAllString(tp.Name, "-")
			if _, dup := p.Trust[name]; dup || name == "" {
				name = fmt.Sprintf("%s-%d", name, len(p.Trust))
			}
			a := &NotationAnchor{TrustedIdentities: tp.TrustedIdentities, VerifyTimestamp: tp.SignatureVerification.VerifyTimestamp}
			if level != NotationLevelStrict {
				a.Level = level
			}
			for _, ts := range tp.TrustStores {
				typ, store, ok := strings.Cut(ts, ":")
				folder := filepath.Join(abs, "truststore", "x509", typ, store)
				if !ok || store == "" || strings.ContainsAny(store, `/\`) || store == ".." {
					return nil, fmt.Errorf("%w: %s: trust store %q: want TYPE:NAME", ErrImport, where, ts)
				}
				if fi, err := os.Stat(folder); err != nil || !fi.IsDir() {
					return nil, fmt.Errorf("%w: %s: trust store %q: no folder %s", ErrImport, where, ts, folder)
				}
				switch typ {
				case "ca":
					a.CA = append(a.CA, folder)
				case "signingAuthority":
					a.SigningAuthority = append(a.SigningAuthority, folder)
				case "tsa":
					a.TSA = append(a.TSA, folder)
				default:
					return nil, fmt.Errorf("%w: %s: trust store type %q: want ca, signingAuthority or tsa", ErrImport, where, typ)
				}
			}
			p.Trust[name] = Anchor{Notation: a}
			r.Signatures = &SignatureRule{Signers: []string{name}}
		}
		if contains(tp.RegistryScopes, "*") {
			wildcard = append(wildcard, r)
		} else {
			specific = append(specific, r)
		}
	}
	p.Models = append(specific, wildcard...)
	out, err := yaml.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrImport, err)
	}
	if _, err := ParsePolicy(ctx, out, abs); err != nil {
		return nil, fmt.Errorf("%w: the imported policy does not load: %w", ErrImport, err)
	}
	head := fmt.Sprintf("# Imported by modelattest policy import-notation from %s.\n"+
		"# Levels: strict -> enforce; permissive -> enforce with anchor level permissive;\n"+
		"# audit and skip -> mode audit (reported, never refused). Trusted identities\n"+
		"# must name the signing certificate's whole subject. Revocation is checked\n"+
		"# only against CRL files listed under crls (none imported); OCSP never.\n", file)
	for _, n := range notes {
		head += "# " + n + "\n"
	}
	return append([]byte(head), out...), nil
}
