package admission

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/modelattest/modelattest/internal/regtest"
)

// The Kubernetes client and API types are the admission webhook's
// business only: the packages a library user imports to pack, push, sign
// or verify must not link them (they add megabytes to every binary).
func TestLibraryPackagesLinkNoKubernetes(t *testing.T) {
	pkgs := []string{"./modelspec", "./oras", "./referrers", "./registry"}
	for _, p := range []string{"./events"} { // when present
		c := exec.Command("go", "list", p)
		c.Dir = regtest.RepoRoot(t)
		if c.Run() == nil {
			pkgs = append(pkgs, p)
		}
	}
	cmd := exec.Command("go", append([]string{"list", "-deps"}, pkgs...)...)
	cmd.Dir = regtest.RepoRoot(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, k := range []string{"k8s.io/api/", "k8s.io/apimachinery/", "k8s.io/client-go/"} {
			if strings.HasPrefix(dep, k) {
				t.Errorf("%s links %s", strings.Join(pkgs, " "), dep)
			}
		}
	}
}
