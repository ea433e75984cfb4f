package integration

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelattest/modelattest/internal/regtest"
)

// TestExitCodes: a script must tell "the content failed a check" (3) from
// "could not run" (1) and "wrong command line" (2).
func TestExitCodes(t *testing.T) {
	model := regtest.ModelDir(t, 32<<10)
	proxy := regtest.NewProxy(t, regtest.Embedded(t, ""))
	ref := proxy.Host + "/models/tiny:v1"
	ma(t, "push", "--plain-http", "--no-progress", ref, model)
	weights, _ := os.ReadFile(filepath.Join(model, "model.safetensors"))

	out := filepath.Join(t.TempDir(), "out")
	tests := []struct {
		name   string
		args   []string
		tamper bool
		code   int
		want   string
	}{
		{"pull ok", []string{"pull", "--plain-http", "--insecure-skip-verify", "-o", out, ref}, false, 0, "Pulled"},
		{"pull without a policy or the insecure flag", []string{"pull", "--plain-http", "-o", out, ref}, false, 2, "--insecure-skip-verify"},
		{"unknown flag", []string{"pull", "--no-such-flag"}, false, 2, "unknown flag"},
		{"bad distribution spec", []string{"inspect", "--plain-http", "--distribution-spec", "v2", ref}, false, 2, "distribution-spec"},
		{"tampered blob", []string{"pull", "--plain-http", "--insecure-skip-verify", "-o", filepath.Join(t.TempDir(), "t"), ref}, true, 3, "integrity"},
		{"unreachable registry", []string{"inspect", "--plain-http", regtest.FreePort(t) + "/models/tiny:v1"}, false, 1, "connection refused"},
		{"missing tag", []string{"inspect", "--plain-http", proxy.Host + "/models/tiny:nope"}, false, 1, "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.tamper {
				proxy.SetTamper(func(r *http.Request, body []byte) []byte {
					if bytes.Equal(body, weights) {
						body = bytes.Clone(body)
						body[0] ^= 0xff
					}
					return body
				})
				defer proxy.SetTamper(nil)
			}
			got, code := maCode(t, tt.args...)
			if code != tt.code || !strings.Contains(got, tt.want) {
				t.Fatalf("exit %d, want %d; output does not contain %q?\n%s", code, tt.code, tt.want, got)
			}
		})
	}
}

// TestPullRefusesEscapingLayerFromRegistry: a manifest pushed straight to a
// registry whose layer path climbs out of the output directory is refused
// before any byte is written, with an error naming the layer.
func TestPullRefusesEscapingLayerFromRegistry(t *testing.T) {
	oras := regtest.Tool(t, "oras")
	h := regtest.Embedded(t, "")
	// oras keeps titles clean, so the hostile manifest is written by hand.
	work := t.TempDir()
	out := filepath.Join(work, "out")
	manifest := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.cncf.model.manifest.v1+json",
"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"data":"e30="},
"layers":[{"mediaType":"application/vnd.cncf.model.weight.v1.raw","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,
"annotations":{"org.cncf.model.filepath":"../../escaped"}}]}`
	mf := filepath.Join(work, "m.json")
	os.WriteFile(mf, []byte(manifest), 0o644)
	blob := filepath.Join(work, "empty.json")
	os.WriteFile(blob, []byte("{}"), 0o644)
	regtest.Run(t, oras, "blob", "push", "--plain-http", h+"/models/evil", blob)
	regtest.Run(t, oras, "manifest", "push", "--plain-http", h+"/models/evil:v2", mf)
	got, code := maCode(t, "pull", "--plain-http", "--insecure-skip-verify", "-o", out, h+"/models/evil:v2")
	if code != 3 || !strings.Contains(got, "escapes") || !strings.Contains(got, "layer 0") {
		t.Fatalf("exit %d:\n%s", code, got)
	}
	if entries := regtest.Entries(t, work); len(entries) != 2 { // m.json, empty.json
		t.Fatalf("written: %v", entries)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(work), "escaped")); err == nil {
		t.Fatal("a file escaped the output directory")
	}
}
