package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelattest/modelattest/internal/regtest"
)

// maEnv runs the CLI with extra environment and standard input.
func maEnv(t *testing.T, env []string, stdin string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(modelattest, args...)
	cmd.Env = append(append(os.Environ(), "HOME="+t.TempDir()), env...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

// authCase is one way of reaching a registry that wants credentials.
type authCase struct {
	host    string
	env     []string // DOCKER_CONFIG, PATH for helpers, …
	creds   []string // flags
	stdin   string
	secrets []string // what must never be printed
	tokens  func() []string
	wrong   []string // flags with a wrong password
}

const robot, robotPassword = "robot$ml+ci", "S3cr3t-r0bot-p4ss"

func authCases(t *testing.T) map[string]func(t *testing.T) authCase {
	return map[string]func(t *testing.T) authCase{
		// distribution with htpasswd, -u/-p (basic auth)
		"basic": func(t *testing.T) authCase {
			h := regtest.Distribution(t, regtest.HtpasswdConfig(regtest.Htpasswd(t, t.TempDir(), robot, robotPassword)))
			return authCase{host: h, env: []string{"DOCKER_CONFIG=" + t.TempDir()},
				creds: []string{"-u", robot, "-p", robotPassword}, secrets: []string{robotPassword},
				wrong: []string{"-u", robot, "-p", "wrong-" + robotPassword}}
		},
		// the ECR pattern: a credential helper named in the Docker config
		"credential-helper": func(t *testing.T) authCase {
			h := regtest.Distribution(t, regtest.HtpasswdConfig(regtest.Htpasswd(t, t.TempDir(), "AWS", robotPassword)))
			helperDir := regtest.CredentialHelper(t, "modelattest-test")
			cfg := t.TempDir()
			b, _ := json.Marshal(map[string]any{"credHelpers": map[string]string{h: "modelattest-test"}})
			os.WriteFile(filepath.Join(cfg, "config.json"), b, 0o600)
			return authCase{host: h,
				env: []string{"DOCKER_CONFIG=" + cfg, "PATH=" + helperDir + string(os.PathListSeparator) + os.Getenv("PATH"),
					"MODELATTEST_HELPER_SERVER=" + h, "MODELATTEST_HELPER_USER=AWS", "MODELATTEST_HELPER_SECRET=" + robotPassword},
				secrets: []string{robotPassword},
				wrong:   []string{"-u", "AWS", "-p", "wrong-" + robotPassword}}
		},
		// the Harbor pattern: bearer tokens from a token service (GET only),
		// a robot account whose name holds a $, the password on stdin
		"token": func(t *testing.T) authCase {
			ts := regtest.NewTokenService(t, robot, robotPassword)
			h := regtest.Distribution(t, ts.RegistryConfig())
			t.Cleanup(func() {
				if ts.Posts() != 0 {
					t.Errorf("%d POSTs to the token service: Harbor answers them 405", ts.Posts())
				}
			})
			return authCase{host: h, env: []string{"DOCKER_CONFIG=" + t.TempDir()},
				creds: []string{"-u", robot, "--password-stdin"}, stdin: robotPassword + "\n",
				secrets: []string{robotPassword}, tokens: ts.Issued,
				wrong: []string{"-u", robot, "-p", "wrong-" + robotPassword}}
		},
	}
}

// TestAuthMatrix: on each authenticated registry, the whole workflow runs —
// push, sign, attest, verify, verified pull, copy -r to a layout and back —
// and no password, secret or bearer token ever appears in any output, text
// or JSON, success or failure.
func TestAuthMatrix(t *testing.T) {
	keys := keyDir(t)
	policy := writeKeyPolicy(t, keys, true)
	key := filepath.Join(keys, "cosign.key")
	for name, setup := range authCases(t) {
		t.Run(name, func(t *testing.T) {
			c := setup(t)
			var outputs []string
			run := func(want int, args ...string) string {
				t.Helper()
				out, code := maEnv(t, append(c.env, "COSIGN_PASSWORD="), c.stdin, args...)
				outputs = append(outputs, out)
				if code != want {
					t.Fatalf("modelattest %s: exit %d, want %d\n%s", strings.Join(args, " "), code, want, out)
				}
				return out
			}
			with := func(args ...string) []string {
				return append(append([]string{args[0], "--plain-http"}, c.creds...), args[1:]...)
			}
			ref := c.host + "/models/tiny:v1"
			model := regtest.ModelDir(t, 8192)
			run(0, with("push", "--no-progress", "--format", "json", ref, model)...)
			run(0, with("sign", "--key", key, ref)...)
			run(0, with("attest", "--key", key, "--type", "slsaprovenance1", "--predicate", filepath.Join(keys, "provenance.json"), ref)...)
			run(0, with("attest", "--key", key, "--type", "model-signing", ref)...)
			run(0, with("verify", "--policy", policy, "--format", "json", ref)...)
			pulled := filepath.Join(t.TempDir(), "pulled")
			run(0, with("pull", "--no-progress", "--policy", policy, "-o", pulled, ref)...)
			regtest.SameTree(t, model, pulled)
			layout := filepath.Join(t.TempDir(), "layout")
			// copy takes its registry flags per side (--from-*, --to-*).
			side := func(prefix string, args ...string) []string {
				out := []string{"--" + prefix + "-plain-http"}
				for _, a := range c.creds {
					switch a {
					case "-u":
						a = "--" + prefix + "-username"
					case "-p":
						a = "--" + prefix + "-password"
					case "--password-stdin":
						a = "--" + prefix + "-password-stdin"
					}
					out = append(out, a)
				}
				return append(out, args...)
			}
			run(0, append([]string{"copy"}, side("from", "-r", "--no-progress", ref, "--to-oci-layout", layout+":v1")...)...)
			back := c.host + "/mirror/tiny:v1"
			run(0, append([]string{"copy"}, side("to", "-r", "--no-progress", "--from-oci-layout", layout+":v1", back)...)...)
			run(0, with("verify", "--policy", policy, back)...)
			run(0, with("discover", "--format", "json", back)...)

			// Without credentials, and with a wrong password: refused, said
			// clearly, and still nothing secret printed.
			out, code := maEnv(t, []string{"DOCKER_CONFIG=" + t.TempDir()}, "", "inspect", "--plain-http", ref)
			outputs = append(outputs, out)
			if low := strings.ToLower(out); code != 1 || !(strings.Contains(low, "unauthorized") || strings.Contains(low, "credential not found")) {
				t.Fatalf("without credentials: exit %d\n%s", code, out)
			}
			out, code = maEnv(t, []string{"DOCKER_CONFIG=" + t.TempDir()}, "", append(append([]string{"pull", "--plain-http", "--insecure-skip-verify", "-o", t.TempDir() + "/x"}, c.wrong...), ref)...)
			outputs = append(outputs, out)
			if code != 1 {
				t.Fatalf("wrong password: exit %d\n%s", code, out)
			}
			secrets := append([]string{}, c.secrets...)
			if c.tokens != nil {
				if len(c.tokens()) == 0 {
					t.Fatal("the token service issued no token: the test did not exercise token auth")
				}
				secrets = append(secrets, c.tokens()...)
			}
			for _, out := range outputs {
				for _, s := range secrets {
					if strings.Contains(out, s) || strings.Contains(out, strings.TrimPrefix(s, "wrong-")) {
						t.Fatalf("a credential leaked into the output:\n%s", out)
					}
				}
			}
		})
	}
}

// TestExpiredTokenAtUploadEndReauthenticates: a bearer token that expires
// while a big blob streams up (Harbor's tokens live 30 minutes) makes the
// closing PUT answer 401; the client gets a new token and finishes the same
// upload, without sending the blob again.
func TestExpiredTokenAtUploadEndReauthenticates(t *testing.T) {
	ts := regtest.NewTokenService(t, robot, robotPassword)
	proxy := regtest.NewProxy(t, regtest.Distribution(t, ts.RegistryConfig()))
	expired := false
	challenge := fmt.Sprintf(`Bearer realm=%q,service=%q,scope="repository:models/big:pull,push"`, ts.URL, ts.Service)
	proxy.SetFault(func(r *http.Request) int {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/") && !expired {
			expired = true
			return -http.StatusUnauthorized // answer 401 with the challenge
		}
		return 0
	})
	proxy.SetChallenge(challenge)
	model := t.TempDir()
	os.WriteFile(filepath.Join(model, "model.safetensors"), bytes.Repeat([]byte("w"), 40<<20), 0o644) // streamed
	out, code := maEnv(t, []string{"DOCKER_CONFIG=" + t.TempDir()}, "", "push", "--plain-http", "--no-progress",
		"-u", robot, "-p", robotPassword, proxy.Host+"/models/big:v1", model)
	if code != 0 {
		t.Fatalf("push: exit %d\n%s", code, out)
	}
	if !expired {
		t.Fatal("the expiry was never simulated")
	}
	if n := proxy.Count("PATCH", "/v2/models/big/blobs/uploads/"); n != 1 {
		t.Fatalf("%d PATCH uploads: the blob was sent again", n)
	}
	if len(ts.Issued()) < 2 {
		t.Fatalf("%d tokens issued: the client did not re-authenticate", len(ts.Issued()))
	}
}
