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

func TestExampleSignVerify(t *testing.T) {
	keys := keyDir(t)
	h := regtest.Embedded(t, "")
	ma(t, "push", "--plain-http", "--no-progress", h+"/models/tiny:v1", regtest.ModelDir(t, 100))
	cmd := exec.Command("go", "run", "../examples/sign-verify", "-plain-http",
		"-key", filepath.Join(keys, "cosign.key"), "-pub", filepath.Join(keys, "cosign.pub"), h+"/models/tiny:v1")
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	for _, want := range []string{"https://sigstore.dev/cosign/sign/v1: 1 of 1 verified", "https://slsa.dev/provenance/v1: 1 of 1 verified"} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("output lacks %q:\n%s", want, b)
		}
	}
}

func TestExampleVerifyThenLoad(t *testing.T) {
	keys := keyDir(t)
	policy := writeKeyPolicy(t, keys, false)
	key := filepath.Join(keys, "cosign.key")
	h := regtest.Embedded(t, "")
	ref := h + "/models/tiny:v1"
	model := regtest.ModelDir(t, 100)
	ma(t, "push", "--plain-http", "--no-progress", ref, model)
	bin := filepath.Join(t.TempDir(), "verify-then-load")
	if b, err := exec.Command("go", "build", "-o", bin, "../examples/verify-then-load").CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	run := func(out string) (string, int) {
		cmd := exec.Command(bin, "-plain-http", "-policy", policy, ref, out)
		b, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return string(b), code
	}
	out := filepath.Join(t.TempDir(), "model")
	if got, code := run(out); code != 3 || !strings.Contains(got, "refused: signatures") {
		t.Fatalf("unsigned model: exit %d\n%s", code, got)
	}
	ma(t, "sign", "--plain-http", "--key", key, ref)
	ma(t, "attest", "--plain-http", "--key", key, "--type", "slsaprovenance1", "--predicate", filepath.Join(keys, "provenance.json"), ref)
	if got, code := run(out); code != 0 || !strings.Contains(got, "verified and pulled") {
		t.Fatalf("signed model: exit %d\n%s", code, got)
	}
	regtest.SameTree(t, model, out)
}
