//go:build linux

package integration

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/modelattest/modelattest/internal/regtest"
)

// TestProgressTotal: on a terminal, push and pull show a total line with
// the bytes moved, the aggregate throughput and the ETA (then "done"); in
// a pipe the same commands write no escape code at all.
func TestProgressTotal(t *testing.T) {
	proxy := regtest.NewProxy(t, regtest.Embedded(t, ""))
	proxy.SetDelay(func(r *http.Request) time.Duration {
		if strings.Contains(r.URL.Path, "/blobs/") && r.Method != http.MethodHead {
			return 300 * time.Millisecond // a few frames while files move
		}
		return 0
	})
	model := regtest.ModelDir(t, 4<<20)
	ref := proxy.Host + "/models/tiny:v1"
	// The last frame: every byte moved, a non-zero rate, done.
	total := regexp.MustCompile(`total\s+\[=+\]\s+4\.0 MiB / 4\.0 MiB\s+[0-9.]+ [KM]iB/s done`)

	for _, args := range [][]string{
		{"push", "--plain-http", "--digest-cache", "", ref, model},
		{"pull", "--plain-http", "--insecure-skip-verify", ref, "-o", t.TempDir() + "/out"},
	} {
		r := startTTY(t, nil, args...)
		if code := r.wait(); code != 0 {
			t.Fatalf("%s: exit %d\n%q", args[0], code, r.output())
		}
		screen := r.output()
		if !total.MatchString(screen) {
			t.Errorf("%s: no total line with throughput, then done:\n%q", args[0], screen)
		}
		if args[0] == "push" && !regexp.MustCompile(`total .*/s ETA [0-9]`).MatchString(screen) {
			t.Errorf("push: no ETA while the upload ran (the proxy stalls each blob request 300 ms):\n%q", screen)
		}
		if !strings.Contains(screen, "\x1b[") {
			t.Errorf("%s: no escape code on a terminal: the bars were not drawn", args[0])
		}

		cmd := exec.Command(modelattest, args...)
		if args[0] == "pull" {
			cmd = exec.Command(modelattest, append(args[:len(args)-1], t.TempDir()+"/piped")...)
		}
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s in a pipe: %v\n%s", args[0], err, stderr.String())
		}
		if bytes.Contains(stdout.Bytes(), []byte("\x1b")) || bytes.Contains(stderr.Bytes(), []byte("\x1b")) {
			t.Errorf("%s in a pipe wrote escape codes:\n%q\n%q", args[0], stdout.String(), stderr.String())
		}
	}
}
