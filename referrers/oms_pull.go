package referrers

import (
	"errors"
	"fmt"
)

// ErrNoModelSigningRequirement is returned by Report.ModelSigningBundle
// when the matched rule requires no model-signing attestation: no
// model-signing bundle was judged, so none may be handed out as verified.
var ErrNoModelSigningRequirement = errors.New("the policy rule requires no model-signing attestation")

// ModelSigningBundle returns the model-signing bundle that met the
// model-signing requirement of the report's rule: the bytes a verified pull
// writes as model.sig beside the model's files, for `model_signing verify`.
// It is a bundle that verified against a signer the requirement names and
// whose statement matched the manifest's layers exactly, never merely the
// first model-signing referrer a registry lists. A rule with no such
// requirement gives ErrNoModelSigningRequirement; a requirement that was
// not met (a warn or audit rule lets the pull go ahead) gives an error
// wrapping ErrVerification.
func (rep *Report) ModelSigningBundle() ([]byte, error) {
	required := false
	for _, req := range rep.Requirements {
		if req.PredicateType != PredicateModelSigning {
			continue
		}
		required = true
		if !req.Satisfied {
			continue
		}
		for _, d := range req.Referrers {
			for i := range rep.Referrers {
				if f := &rep.Referrers[i]; f.Digest == d && f.Depth == 1 && f.bundle != nil {
					return f.bundle, nil
				}
			}
		}
	}
	if !required {
		return nil, fmt.Errorf("%w (rule %d matched %s): model.sig is written only when the policy verified it", ErrNoModelSigningRequirement, rep.Rule, rep.Repository)
	}
	return nil, fmt.Errorf("%w: %s: no model-signing bundle met the rule's requirement, so there is no verified model.sig to write", ErrVerification, rep.Model.Digest)
}
