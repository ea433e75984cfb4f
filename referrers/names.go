package referrers

import "github.com/modelattest/modelattest/oras"

// policyName is the name VerifyModel matches policy rules against: the
// target's own canonical name when it knows it (an *oras.Target: so the
// library decides as the CLI does, whatever name a caller passes), else
// repository in canonical form (a layout path, or a name that is not a
// reference, is used as given).
func policyName(src any, repository string) string {
	if n, ok := src.(interface{ PolicyName() string }); ok {
		return n.PolicyName()
	}
	if c, err := oras.CanonicalRepository(repository, false); err == nil {
		return c
	}
	return repository
}
