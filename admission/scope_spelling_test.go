package admission

import (
	"context"
	"regexp"
	"testing"
)

// TestCELScopeCoversEverySpelling: the matchConditions must send every
// reference the webhook would find in scope, or the API server admits it
// without asking. A port written with leading zeros, a default port or a
// trailing dot after a wildcard host, and a default port given in the
// scope, are all the same registry, in scope and sent (old code:
// registry.example:0443/models/x was out of scope and x.acme.example:443/prod/m
// was never sent although *.acme.example/prod/** is in scope: both were
// admitted unchecked, and the kubelet pulls them from the protected
// registry).
func TestCELScopeCoversEverySpelling(t *testing.T) {
	f := newFixture(t)
	f.writePolicy(`version: 1
trust:
  release: {key: release.pub}
models:
  - match: ["**"]
    signatures: {signers: [release]}
admission:
  scope: ["*.acme.example/prod/**", "registry.example/models/**", "registry.example:5000/team/**", "harbor.example:443/ml/**"]
`)
	p, err := LoadPolicy(context.Background(), f.policy)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(celScopeRegexp(p))
	for _, ref := range []string{
		"x.acme.example/prod/m:v1", "x.acme.example:443/prod/m:v1", "x.acme.example./prod/m", "X.Acme.Example:0443/prod/m",
		"registry.example:0443/models/x:v1", "registry.example.:443/models/x",
		"registry.example:5000/team/x", "registry.example:05000/team/x", "registry.example.:5000/team/x",
		"harbor.example/ml/x:v1", "harbor.example:443/ml/x", "harbor.example:0443/ml/x",
	} {
		r := &modelRef{Value: ref, Field: "test"}
		r.parse()
		if r.ParseErr == nil && !p.InScope(r.Repository) {
			t.Errorf("%s (%s) is not in scope", ref, r.Repository)
		}
		if !re.MatchString(ref) {
			t.Errorf("the CEL condition would not send %s, which is in scope", ref)
		}
	}
	for _, ref := range []string{"acme.example.evil/prod/m", "registry.example:5001/team/x", "registry.example:5000/models/x", "x.acme.example:4430/prod/m"} {
		if re.MatchString(ref) {
			t.Errorf("the CEL condition sends %s, which is out of scope", ref)
		}
	}
}
