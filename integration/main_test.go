// Package integration holds the end-to-end tests: the modelattest binary
// against real registries (the embedded one, the CNCF distribution registry
// as a process, OCI layouts) and the real peer CLIs (oras, cosign, crane) at
// the versions the Makefile pins.
package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// modelattest is the CLI under test, built once for the package.
var modelattest string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "modelattest-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	modelattest = filepath.Join(dir, "modelattest")
	build := exec.Command("go", "build", "-o", modelattest, "../cmd/modelattest")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build modelattest:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// ma runs the modelattest CLI and fails the test if it fails.
func ma(t *testing.T, args ...string) string {
	t.Helper()
	out, code := maCode(t, args...)
	if code != 0 {
		t.Fatalf("modelattest %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// maCode runs the modelattest CLI and returns its output and exit code.
func maCode(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(modelattest, args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "DOCKER_CONFIG="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("modelattest %s: %v", strings.Join(args, " "), err)
	}
	return string(out), 0
}

// digestOf reads the "Digest: sha256:…" line the CLI prints.
func digestOf(t *testing.T, out string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if d, ok := strings.CutPrefix(l, "Digest: "); ok {
			return strings.TrimSpace(d)
		}
	}
	t.Fatalf("no digest in output:\n%s", out)
	return ""
}
