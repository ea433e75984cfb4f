//go:build linux

package integration

import (
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/modelattest/modelattest/internal/regtest"
)

// ttyRun is the CLI running on a pseudo-terminal, as a user at a shell
// runs it: the terminal is its standard input, output and error and its
// controlling terminal (Ctrl-C reaches it as SIGINT).
type ttyRun struct {
	t    *testing.T
	cmd  *exec.Cmd
	ptm  *os.File // what the user sees and types into
	tty  *os.File // the program's side, kept open to read its modes
	mu   sync.Mutex
	out  strings.Builder
	done chan struct{}
}

func startTTY(t *testing.T, env []string, args ...string) *ttyRun {
	t.Helper()
	ptm, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	if err := pty.Setsize(ptm, &pty.Winsize{Rows: 40, Cols: 120}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(modelattest, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &ttyRun{t: t, cmd: cmd, ptm: ptm, tty: tty, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		buf := make([]byte, 4096)
		for {
			n, err := ptm.Read(buf)
			r.mu.Lock()
			r.out.Write(buf[:n])
			r.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		ptm.Close()
		tty.Close()
	})
	return r
}

func (r *ttyRun) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out.String()
}

// waitFor waits until the screen shows s.
func (r *ttyRun) waitFor(s string) {
	r.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(r.output(), s) {
		if time.Now().After(deadline) {
			r.t.Fatalf("no %q on the terminal after 60 s:\n%q", s, r.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// answerSecret waits for the prompt and for echo to be off (typing earlier
// would show the secret), then types the secret and Enter.
func (r *ttyRun) answerSecret(prompt, secret string) {
	r.t.Helper()
	r.waitFor(prompt)
	deadline := time.Now().Add(30 * time.Second)
	for {
		tio, err := unix.IoctlGetTermios(int(r.tty.Fd()), unix.TCGETS)
		if err != nil {
			r.t.Fatal(err)
		}
		if tio.Lflag&unix.ECHO == 0 {
			break
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("echo still on after the prompt %q", prompt)
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.ptm.WriteString(secret + "\r")
}

// wait returns the exit code.
func (r *ttyRun) wait() int {
	r.t.Helper()
	err := r.cmd.Wait()
	r.tty.Close() // the reader sees EOF once the program's side is closed
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		r.t.Fatal(err)
	}
	return 0
}

// withoutPassword is the environment with $COSIGN_PASSWORD unset.
func withoutPassword(t *testing.T) {
	t.Setenv("COSIGN_PASSWORD", "")
	os.Unsetenv("COSIGN_PASSWORD")
}

// TestPasswordsAskedOnTerminal: with $COSIGN_PASSWORD unset, keygen asks
// for the password twice on the terminal (echo off) and sign asks once, as
// cosign does; the key is encrypted with what was typed, and what was
// typed is never shown.
func TestPasswordsAskedOnTerminal(t *testing.T) {
	withoutPassword(t)
	dir := t.TempDir()
	const secret = "c0rrect-h0rse"
	r := startTTY(t, nil, "keygen", "--output-key-prefix", filepath.Join(dir, "release"))
	r.answerSecret("Enter password for private key: ", secret)
	r.answerSecret("Enter password for private key again: ", secret)
	if code := r.wait(); code != 0 || !strings.Contains(r.output(), "Private key written") {
		t.Fatalf("keygen exit %d:\n%s", code, r.output())
	}
	if strings.Contains(r.output(), secret) {
		t.Fatalf("the password was echoed:\n%q", r.output())
	}

	// Two different answers: nothing written.
	r = startTTY(t, nil, "keygen", "--output-key-prefix", filepath.Join(dir, "other"))
	r.answerSecret("Enter password for private key: ", secret)
	r.answerSecret("Enter password for private key again: ", "typo")
	if code := r.wait(); code != 1 || !strings.Contains(r.output(), "differ") {
		t.Fatalf("keygen with differing passwords: exit %d:\n%s", code, r.output())
	}
	if _, err := os.Stat(filepath.Join(dir, "other.key")); err == nil {
		t.Fatal("keygen wrote a key after differing passwords")
	}

	layout := filepath.Join(t.TempDir(), "oci")
	ma(t, "pack", "--no-progress", regtest.ModelDir(t, 64), "-o", layout+":v1")
	key := filepath.Join(dir, "release.key")
	r = startTTY(t, nil, "sign", "--key", key, "--oci-layout", layout+":v1")
	r.answerSecret("Enter password for private key: ", secret)
	if code := r.wait(); code != 0 || !strings.Contains(r.output(), "Signed") {
		t.Fatalf("sign on a terminal: exit %d:\n%s", code, r.output())
	}
	// The key really is encrypted with what was typed.
	t.Setenv("COSIGN_PASSWORD", secret)
	ma(t, "sign", "--key", key, "--oci-layout", layout+":v1")
	t.Setenv("COSIGN_PASSWORD", "not-"+secret)
	if out, code := maCode(t, "sign", "--key", key, "--oci-layout", layout+":v1"); code != 1 || !strings.Contains(out, "wrong password") {
		t.Fatalf("sign with another password: exit %d\n%s", code, out)
	}
}

// TestProgressDroppedOnInterrupt: Ctrl-C during a push whose bars are on
// the terminal ends with exit 130 and no bar left on the screen: after the
// bars' last "move up and clear" nothing of a bar is drawn again.
func TestProgressDroppedOnInterrupt(t *testing.T) {
	proxy := regtest.NewProxy(t, regtest.Embedded(t, ""))
	proxy.SetDelay(func(r *http.Request) time.Duration {
		if r.Method != http.MethodGet && r.Method != http.MethodHead && strings.Contains(r.URL.Path, "/blobs/") {
			return 5 * time.Second // the uploads hang while Ctrl-C is typed
		}
		return 0
	})
	model := regtest.ModelDir(t, 4<<20)
	r := startTTY(t, []string{"COSIGN_PASSWORD="}, "push", "--plain-http", "--digest-cache", "", proxy.Host+"/models/tiny:v1", model)
	r.waitFor("model.safetensors")
	time.Sleep(300 * time.Millisecond) // a few frames of bars
	r.ptm.WriteString("\x03")          // Ctrl-C: the terminal sends SIGINT
	code := r.wait()
	screen := r.output()
	if code != 130 {
		t.Fatalf("exit %d after Ctrl-C, want 130:\n%q", code, screen)
	}
	last := strings.LastIndex(screen, "\x1b[J")
	if last < 0 {
		t.Fatalf("the bars never cleared their lines:\n%q", screen)
	}
	rest := screen[last:]
	for _, bar := range []string{"model.safetensors", "KiB", "MiB"} {
		if strings.Contains(rest, bar) {
			t.Fatalf("a bar is still drawn after the last clear (%q):\n%q", bar, rest)
		}
	}
	if !strings.Contains(rest, "interrupted") {
		t.Fatalf("no 'interrupted' after the bars:\n%q", rest)
	}
}

// TestSignalExitCodes: SIGTERM during a push exits 143 (as shells report
// it), with nothing left to resume from in a bad state; a server stopped by
// SIGTERM after a clean shutdown exits 0.
func TestSignalExitCodes(t *testing.T) {
	proxy := regtest.NewProxy(t, regtest.Embedded(t, ""))
	proxy.SetDelay(func(r *http.Request) time.Duration {
		if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
			return 3 * time.Second
		}
		return 0
	})
	cmd := exec.Command(modelattest, "push", "--plain-http", "--no-progress", "--digest-cache", "", proxy.Host+"/models/tiny:v1", regtest.ModelDir(t, 4096))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(60 * time.Second); proxy.Count("POST", "/v2/")+proxy.Count("PUT", "/v2/") == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the push never reached the registry")
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 143 || !strings.Contains(out.String(), "interrupted (terminated)") {
		t.Fatalf("push after SIGTERM: %v\n%s", err, out.String())
	}

	serve := exec.Command(modelattest, "registry", "serve", "--address", "127.0.0.1:0", "--root", t.TempDir())
	sout := &lockedBuffer{}
	serve.Stdout, serve.Stderr = sout, sout
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(sout.String(), "Serving"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("registry serve did not start:\n%s", sout.String())
		}
	}
	serve.Process.Signal(syscall.SIGTERM)
	if err := serve.Wait(); err != nil {
		t.Fatalf("registry serve after SIGTERM: %v\n%s", err, sout.String())
	}
}

// TestLoginAsksOnTerminal: login without -p on a terminal asks for the
// user name (echoed) and the password (not echoed), then stores them.
func TestLoginAsksOnTerminal(t *testing.T) {
	h := regtest.Distribution(t, regtest.HtpasswdConfig(regtest.Htpasswd(t, t.TempDir(), robot, robotPassword)))
	cfg := t.TempDir()
	r := startTTY(t, []string{"DOCKER_CONFIG=" + cfg}, "login", "--plain-http", h)
	r.waitFor("Username: ")
	r.ptm.WriteString(robot + "\r")
	r.answerSecret("Password: ", robotPassword)
	if code := r.wait(); code != 0 || !strings.Contains(r.output(), "Login Succeeded") {
		t.Fatalf("login on a terminal: exit %d\n%s", code, r.output())
	}
	if strings.Contains(r.output(), robotPassword) {
		t.Fatalf("the password was echoed:\n%q", r.output())
	}
	if b, _ := os.ReadFile(filepath.Join(cfg, "config.json")); !strings.Contains(string(b), h) {
		t.Fatalf("config after login:\n%s", b)
	}
}
