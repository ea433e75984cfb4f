package referrers

import (
	"context"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// verifyNotationFinding verifies a Notary Project signature referrer of
// parent against every Notary Project anchor the rule names. Like a
// bundle, it counts only when it verifies against trusted material and
// signs parent's own digest, size and media type.
func verifyNotationFinding(ctx context.Context, f *Finding, env *NotationEnvelope, parent ocispec.Descriptor, p *Policy, anchors []string) {
	f.Format = env.Format()
	if f.ArtifactType == "" {
		f.ArtifactType = NotationArtifactType
	}
	var reasons []string
	for _, name := range anchors {
		v := p.verifiers[name]
		if !v.IsNotation() {
			continue
		}
		sig, err := v.VerifyNotation(ctx, parent, env)
		if err != nil {
			reasons = append(reasons, name+": "+strings.TrimPrefix(err.Error(), ErrVerification.Error()+": "))
			continue
		}
		f.verifiedBy(name, sig.key)
		f.notAfter = earliest(f.notAfter, sig.notAfter)
		f.notation, f.Signer, f.Notes = sig, sig.Signer, sig.Notes
	}
	switch {
	case len(f.VerifiedBy) > 0:
		f.Verdict = VerdictVerified
	case len(reasons) == 0:
		f.Verdict, f.Reason = VerdictUntrusted, "a Notary Project signature, and the rule names no notation anchor"
	default:
		f.Verdict, f.Reason = VerdictUntrusted, strings.Join(reasons, "; ")
	}
	if f.Signer == "" {
		if who, _, err := env.Claim(); err == nil {
			f.Signer = who + " (claimed, not verified)"
		}
	}
}

// provides reports whether a verified finding carries predicateType: a
// Notary Project signature signs the model as cosign's signature
// predicate does, so the two count together toward "signatures".
func (f *Finding) provides(predicateType string) bool {
	if f.notation != nil {
		return predicateType == PredicateCosignSign
	}
	return f.statement != nil && f.statement.PredicateType == predicateType
}
