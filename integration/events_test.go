package integration

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/modelattest/modelattest/internal/regtest"
)

// hecCollector records Splunk HEC bodies and the Authorization header.
type hecCollector struct {
	*httptest.Server
	mu     sync.Mutex
	bodies [][]byte
	auth   []string
}

func newHECCollector(t *testing.T) *hecCollector {
	c := &hecCollector{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		c.bodies = append(c.bodies, b)
		c.auth = append(c.auth, r.Header.Get("Authorization"))
		c.mu.Unlock()
		io.WriteString(w, `{"text":"Success","code":0}`)
	}))
	t.Cleanup(c.Close)
	return c
}

// events returns each HEC envelope's event, as JSON lines.
func (c *hecCollector) events(t *testing.T) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out bytes.Buffer
	for _, b := range c.bodies {
		dec := json.NewDecoder(bytes.NewReader(b))
		for dec.More() {
			var h struct{ Event json.RawMessage }
			if err := dec.Decode(&h); err != nil {
				t.Fatalf("HEC body: %v\n%s", err, b)
			}
			out.Write(h.Event)
			out.WriteByte('\n')
		}
	}
	return out.Bytes()
}

// TestDecisionEvents: verify and verified pull, on registries that want a
// password or bearer tokens, emit one schema-valid decision event each to
// --events FILE and to a Splunk HEC collector (token from the environment)
// — passing, failing and refused decisions alike — and no password, token
// or HEC token is in any event or body. --events - with --format json is a
// usage error.
func TestDecisionEvents(t *testing.T) {
	keys := keyDir(t)
	policy := writeKeyPolicy(t, keys, false)
	key := filepath.Join(keys, "cosign.key")
	const hecToken = "hec-5ecret-70ken-0042"
	for _, name := range []string{"basic", "token"} {
		t.Run(name, func(t *testing.T) {
			c := authCases(t)[name](t)
			col := newHECCollector(t)
			env := append(c.env, "COSIGN_PASSWORD=", "MODELATTEST_EVENTS_HEADERS=Authorization=Splunk%20"+hecToken)
			run := func(want int, args ...string) string {
				t.Helper()
				args = append(append([]string{args[0], "--plain-http"}, c.creds...), args[1:]...)
				out, code := maEnv(t, env, c.stdin, args...)
				if code != want {
					t.Fatalf("modelattest %s: exit %d, want %d\n%s", strings.Join(args, " "), code, want, out)
				}
				return out
			}
			signed, unsigned := c.host+"/models/tiny:v1", c.host+"/models/tiny:unsigned"
			run(0, "push", "--no-progress", signed, regtest.ModelDir(t, 4096))
			run(0, "sign", "--key", key, signed)
			run(0, "attest", "--key", key, "--type", "slsaprovenance1", "--predicate", filepath.Join(keys, "provenance.json"), signed)
			run(0, "push", "--no-progress", unsigned, regtest.ModelDir(t, 2048))

			file := filepath.Join(t.TempDir(), "events.jsonl")
			sinks := []string{"--events", file, "--events-url", col.URL, "--events-format", "splunk-hec"}
			run(0, append([]string{"verify", "--policy", policy, "--format", "json"}, append(sinks, signed)...)...)
			run(3, append([]string{"verify", "--policy", policy}, append(sinks, unsigned)...)...)
			run(0, append([]string{"pull", "--no-progress", "--policy", policy, "-o", filepath.Join(t.TempDir(), "ok")}, append(sinks, signed)...)...)
			refused := filepath.Join(t.TempDir(), "refused")
			run(3, append([]string{"pull", "--no-progress", "--policy", policy, "-o", refused}, append(sinks, unsigned)...)...)
			if _, err := os.Stat(refused); !os.IsNotExist(err) {
				t.Errorf("refused pull wrote %s", refused)
			}
			out := run(2, "verify", "--policy", policy, "--format", "json", "--events", "-", signed)
			if !strings.Contains(out, "stdout") {
				t.Errorf("--events - with --format json:\n%s", out)
			}

			fileBytes, _ := os.ReadFile(file)
			want := []struct{ face, verdict, ref string }{
				{"verify", "pass", signed}, {"verify", "fail", unsigned}, {"pull", "pass", signed}, {"pull", "fail", unsigned},
			}
			for sink, raw := range map[string][]byte{"file": fileBytes, "collector": col.events(t)} {
				evs := regtest.DecisionEvents(t, raw)
				if len(evs) != len(want) {
					t.Fatalf("%s: %d events, want %d:\n%s", sink, len(evs), len(want), raw)
				}
				for i, w := range want {
					u := evs[i]["data"].(map[string]any)["unmapped"].(map[string]any)
					m := u["model"].(map[string]any)
					if u["face"] != w.face || u["verdict"] != w.verdict || m["reference"] != w.ref || !strings.HasPrefix(m["digest"].(string), "sha256:") {
						t.Errorf("%s event %d: %v", sink, i, u)
					}
					if w.verdict == "pass" && (len(u["signers"].([]any)) != 1 || len(u["predicate_types"].([]any)) != 2) {
						t.Errorf("%s event %d: signers %v, predicate types %v", sink, i, u["signers"], u["predicate_types"])
					}
				}
			}
			for _, a := range col.auth {
				if a != "Splunk "+hecToken {
					t.Errorf("collector saw Authorization %q", a)
				}
			}
			secrets := append([]string{hecToken}, c.secrets...)
			if c.tokens != nil {
				if len(c.tokens()) == 0 {
					t.Fatal("no bearer token issued: token auth was not exercised")
				}
				secrets = append(secrets, c.tokens()...)
			}
			col.mu.Lock()
			all := append([][]byte{fileBytes}, col.bodies...)
			col.mu.Unlock()
			for _, b := range all {
				for _, s := range secrets {
					if bytes.Contains(b, []byte(s)) {
						t.Fatalf("a secret is in an event:\n%s", b)
					}
				}
			}
		})
	}
}
