package integration

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelattest/modelattest/internal/regtest"
)

// The programs in examples/ are documentation that must keep working.
func TestExamplePushPull(t *testing.T) {
	model := regtest.ModelDir(t, 1000)
	out := filepath.Join(t.TempDir(), "pulled")
	cmd := exec.Command("go", "run", "../examples/push-pull", "-plain-http", "-name", "tiny",
		regtest.Embedded(t, "")+"/models/tiny:v1", model, out)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if !strings.Contains(string(b), "pushed sha256:") {
		t.Fatalf("output:\n%s", b)
	}
	regtest.SameTree(t, model, out)
}
