// Package regtest starts the real registries and finds the real peer CLIs
// that the tests run against: the embedded OCI 1.1 registry, the CNCF
// distribution registry as a process, an OCI layout, and oras, cosign and
// crane at the versions the Makefile pins. It is for tests only.
package regtest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelattest/modelattest/registry"
)

// RepoRoot is the module's root directory (where go.mod is).
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// Tool returns the path of a pinned peer binary installed by `make tools`
// into .tools/bin (or $MODELATTEST_TOOLS). When it is missing the test is
// skipped on a developer machine and fails in CI (CI=true): a skipped
// interop test is a missing test.
func Tool(t testing.TB, name string) string {
	t.Helper()
	dir := os.Getenv("MODELATTEST_TOOLS")
	if dir == "" {
		dir = filepath.Join(RepoRoot(t), ".tools", "bin")
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		msg := fmt.Sprintf("%s not installed in %s: run `make tools`", name, dir)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

// Embedded starts the embedded OCI 1.1 registry on a loopback port with its
// data in root (a new temp dir when empty) and returns its host:port.
func Embedded(t testing.TB, root string) string {
	t.Helper()
	if root == "" {
		root = t.TempDir()
	}
	s, err := registry.Start(context.Background(), registry.Config{Addr: "127.0.0.1:0", RootDir: root})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s.Addr()
}

// FreePort returns a loopback host:port that was free a moment ago.
func FreePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// Distribution starts the CNCF distribution registry (v3, no Referrers API)
// as a process, with extra config appended to its YAML (auth, for example),
// and returns its host:port.
func Distribution(t testing.TB, extraConfig string) string {
	t.Helper()
	return DistributionAt(t, t.TempDir(), extraConfig)
}

// DistributionAt is Distribution with its storage and config under dir.
func DistributionAt(t testing.TB, dir, extraConfig string) string {
	t.Helper()
	bin := Tool(t, "registry")
	addr := FreePort(t)
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  secret: modelattest-test
%s`, filepath.Join(dir, "data"), addr, extraConfig)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfgPath)
	logf, _ := os.Create(filepath.Join(dir, "registry.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
	})
	WaitHTTP(t, "http://"+addr+"/v2/", cmd)
	return addr
}

// WaitHTTP waits until url answers at all (any status), or fails the test.
func WaitHTTP(t testing.TB, url string, cmd *exec.Cmd) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		if cmd != nil && cmd.ProcessState != nil {
			t.Fatalf("%s exited: %v", cmd.Path, cmd.ProcessState)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not come up", url)
}

// Run runs a command and returns its combined output, failing the test
// when it fails.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := RunErr(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return out
}

// RunErr runs a command and returns its combined output and error.
func RunErr(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "HOME="+os.TempDir())
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// RunIn runs a command in dir and returns its combined output and error.
func RunIn(dir, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
