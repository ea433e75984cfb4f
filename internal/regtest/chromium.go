package regtest

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Chromium returns Debian's headless Chromium (`make tools` installs it
// with apt-get when missing). Missing, the test skips on a developer
// machine and fails in CI (CI=true).
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "chromium not installed: run `make chromium` (Debian's chromium package)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// Page is what headless Chromium made of a page: the DOM it built,
// serialized, and the console lines it logged (CSP violations included).
type Page struct {
	DOM     string
	Console []string
}

// LoadPage opens path in headless Chromium and returns the DOM after the
// page loaded; with screenshot set, it also writes a PNG of the page there.
func LoadPage(t testing.TB, chromium, path, screenshot string) Page {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
		"--user-data-dir=" + t.TempDir(), "--enable-logging=stderr", "--v=0"}
	cmd := exec.CommandContext(ctx, chromium, append(base, "--dump-dom", "file://"+path)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	dom, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom %s: %v\n%s", path, err, stderr.String())
	}
	p := Page{DOM: string(dom)}
	for _, l := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(l, ":CONSOLE") {
			p.Console = append(p.Console, l)
		}
	}
	if screenshot != "" {
		shot := exec.CommandContext(ctx, chromium, append(base, "--hide-scrollbars", "--window-size=1280,1600", "--screenshot="+screenshot, "file://"+path)...)
		if out, err := shot.CombinedOutput(); err != nil {
			t.Fatalf("chromium --screenshot: %v\n%s", err, out)
		}
	}
	return p
}
