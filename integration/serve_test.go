package integration

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modelattest/modelattest/internal/regtest"
)

// served is a `modelattest registry serve` process.
type served struct {
	cmd  *exec.Cmd
	Host string
	Root string
	log  string
}

var servingRE = regexp.MustCompile(`https?://([0-9.:]+)`)

// serve starts `modelattest registry serve` on a free port with its data in
// root, and stops it (gracefully) when the test ends.
func serve(t *testing.T, root string, extra ...string) *served {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "registry.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(modelattest, append([]string{"registry", "serve", "--address", "127.0.0.1:0", "--root", root}, extra...)...)
	cmd.Stderr = logf
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &served{cmd: cmd, Root: root, log: logPath}
	line := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		l, _ := r.ReadString('\n')
		line <- l
		_, _ = io.Copy(io.Discard, r)
	}()
	select {
	case l := <-line:
		m := servingRE.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("registry serve said %q", l)
		}
		s.Host = m[1]
	case <-time.After(20 * time.Second):
		t.Fatal("registry serve did not start")
	}
	t.Cleanup(func() { s.stop(syscall.SIGTERM); logf.Close() })
	return s
}

// stop ends the process with sig and waits for it.
func (s *served) stop(sig syscall.Signal) {
	if s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Signal(sig)
	_ = s.cmd.Wait()
}

// TestConformance runs the OCI distribution-spec conformance suite (pinned,
// OCI_VERSION=1.1) against `modelattest registry serve` and requires every
// enabled check, the Referrers API and OCI-Subject ones included, to pass.
func TestConformance(t *testing.T) {
	suite := regtest.Tool(t, "conformance")
	s := serve(t, t.TempDir())
	results := t.TempDir()
	cmd := exec.Command(suite)
	cmd.Dir = results
	cmd.Env = append(os.Environ(),
		"OCI_REGISTRY="+s.Host, "OCI_VERSION=1.1", "OCI_TLS=disabled",
		"OCI_DATA_SHA512=false", "OCI_DATA_NONDISTRIBUTABLE=false", "OCI_API_BLOBS_MOUNT_ANONYMOUS=false",
		"OCI_REPO1=conformance/repo1", "OCI_REPO2=conformance/repo2",
		"OCI_RESULTS_DIR="+results)
	out, err := cmd.CombinedOutput()
	report := string(out)
	if err != nil {
		t.Fatalf("conformance suite failed: %v\n%s", err, report)
	}
	if !strings.Contains(report, "OCI Conformance Test: Pass") {
		t.Fatalf("suite did not pass:\n%s", report)
	}
	for _, l := range strings.Split(report, "\n") {
		if strings.HasSuffix(strings.TrimSpace(l), ": Fail") || strings.HasSuffix(strings.TrimSpace(l), ":       Fail") {
			t.Errorf("failed check: %s", l)
		}
	}
	for _, must := range []string{"Referrers", "Manifest put with subject", "Artifacts with Subject", "Missing Subject"} {
		re := regexp.MustCompile(regexp.QuoteMeta(must) + `\.*:\s+Pass`)
		if !re.MatchString(report) {
			t.Errorf("%q did not pass", must)
		}
	}
	if regexp.MustCompile(`FAIL\.*:\s+[1-9]`).MatchString(report) {
		t.Errorf("suite counted failures:\n%s", report)
	}
	t.Logf("conformance summary:\n%s", report[strings.Index(report, "API conformance"):])
}

// TestRestartKeepsEverything: push, attach referrers, restart the registry
// (cleanly, then after a kill, then with its referrers index deleted), and
// every time the model and its referrers are still there.
func TestRestartKeepsEverything(t *testing.T) {
	oras := regtest.Tool(t, "oras")
	root := t.TempDir()
	model := regtest.ModelDir(t, 1<<20)
	s := serve(t, root)
	ref := s.Host + "/models/tiny:v1"
	ma(t, "push", "--plain-http", "--no-progress", ref, model)
	note := filepath.Join(t.TempDir(), "note.txt")
	os.WriteFile(note, []byte("approved"), 0o644)
	attach := func(host, artifactType string) {
		regtest.Run(t, oras, "attach", "--disable-path-validation", "--plain-http", "--artifact-type", artifactType, host+"/models/tiny:v1", note)
	}
	attach(s.Host, "application/vnd.example.first")

	check := func(host string, want ...string) {
		t.Helper()
		tree := ma(t, "discover", "--plain-http", "--distribution-spec", "v1.1-referrers-api", host+"/models/tiny:v1")
		for _, w := range want {
			if !strings.Contains(tree, w) {
				t.Fatalf("after restart, %s is missing:\n%s", w, tree)
			}
		}
		out := filepath.Join(t.TempDir(), "out")
		ma(t, "pull", "--plain-http", "--insecure-skip-verify", "--no-progress", "-o", out, host+"/models/tiny:v1")
		regtest.SameTree(t, model, out)
	}

	s.stop(syscall.SIGTERM) // clean: the index is marked complete
	s = serve(t, root)
	check(s.Host, "application/vnd.example.first")

	attach(s.Host, "application/vnd.example.second")
	s.stop(syscall.SIGKILL) // unclean: the next start rebuilds the index
	s = serve(t, root)
	check(s.Host, "application/vnd.example.first", "application/vnd.example.second")

	s.stop(syscall.SIGTERM)
	if err := os.RemoveAll(filepath.Join(root, "modelattest")); err != nil { // index lost
		t.Fatal(err)
	}
	s = serve(t, root)
	check(s.Host, "application/vnd.example.first", "application/vnd.example.second")
}

// TestServeTLSAndBasicAuth: `registry serve` with TLS and htpasswd; the CLI
// reaches it with --ca-file (or --insecure) and credentials, and is refused
// without them.
func TestServeTLSAndBasicAuth(t *testing.T) {
	dir := t.TempDir()
	cert, key := regtest.SelfSignedCert(t, dir)
	htpasswd := regtest.Htpasswd(t, dir, "robot$ml+ci", "s3cret")
	s := serve(t, t.TempDir(), "--tls-cert", cert, "--tls-key", key, "--htpasswd", htpasswd)
	ref := s.Host + "/models/tiny:v1"
	model := regtest.ModelDir(t, 1000)
	creds := []string{"-u", "robot$ml+ci", "-p", "s3cret"}
	ma(t, append(append([]string{"push", "--no-progress", "--ca-file", cert}, creds...), ref, model)...)
	out := filepath.Join(t.TempDir(), "out")
	ma(t, append(append([]string{"pull", "--no-progress", "--insecure", "--insecure-skip-verify", "-o", out}, creds...), ref)...)
	regtest.SameTree(t, model, out)
	for name, args := range map[string][]string{
		"untrusted certificate": append([]string{"inspect"}, append(creds, ref)...),
		"no credentials":        {"inspect", "--ca-file", cert, ref},
		"wrong password":        {"inspect", "--ca-file", cert, "-u", "robot$ml+ci", "-p", "nope", ref},
	} {
		if got, code := maCode(t, args...); code != 1 {
			t.Errorf("%s: exit %d\n%s", name, code, got)
		}
	}
}

// TestORASPushPullOnEmbedded: plain oras push and pull through the
// embedded registry.
func TestORASPushPullOnEmbedded(t *testing.T) {
	oras := regtest.Tool(t, "oras")
	h := regtest.Embedded(t, "")
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "weights.bin"), []byte("some weights"), 0o644)
	regtest.RunIn(src, oras, "push", "--plain-http", h+"/plain/artifact:v1", "weights.bin")
	out := t.TempDir()
	regtest.Run(t, oras, "pull", "--plain-http", "-o", out, h+"/plain/artifact:v1")
	if b, err := os.ReadFile(filepath.Join(out, "weights.bin")); err != nil || string(b) != "some weights" {
		t.Fatalf("oras pull: %q %v", b, err)
	}
}
