package integration

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelattest/modelattest/internal/regtest"
)

// TestLoginLogout: login checks the password against the registry and
// stores it as docker and oras do — through the credsStore helper when the
// Docker config names one (the secret reaches the helper, not the file),
// else in the config file; every command and the real oras CLI then use
// it; logout removes it, and a command without credentials says how to log
// in. A wrong password is refused naming the registry, and stores nothing.
func TestLoginLogout(t *testing.T) {
	orasCLI := regtest.Tool(t, "oras")
	h := regtest.Distribution(t, regtest.HtpasswdConfig(regtest.Htpasswd(t, t.TempDir(), robot, robotPassword)))
	helperDir := regtest.CredentialHelper(t, "modelattest-test")
	model := regtest.ModelDir(t, 1024)
	basic := base64.StdEncoding.EncodeToString([]byte(robot + ":" + robotPassword))

	for _, tt := range []struct {
		name       string
		credsStore bool
	}{{"credsStore helper", true}, {"config file", false}} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := t.TempDir()
			if tt.credsStore {
				os.WriteFile(filepath.Join(cfg, "config.json"), []byte(`{"credsStore":"modelattest-test"}`), 0o600)
			}
			helperStore := filepath.Join(t.TempDir(), "keychain.json")
			env := []string{"DOCKER_CONFIG=" + cfg, "MODELATTEST_HELPER_STORE=" + helperStore,
				"PATH=" + helperDir + string(os.PathListSeparator) + os.Getenv("PATH")}
			read := func(name string) string { b, _ := os.ReadFile(name); return string(b) }

			out, code := maEnv(t, env, "wrong-"+robotPassword+"\n", "login", "--plain-http", "-u", robot, "--password-stdin", h)
			if code != 1 || !strings.Contains(out, "registry "+h+" refused access with the credentials given") {
				t.Fatalf("wrong password: exit %d\n%s", code, out)
			}
			if strings.Contains(read(helperStore), robot) || strings.Contains(read(filepath.Join(cfg, "config.json")), "auths") {
				t.Fatal("a refused login stored something")
			}

			out, code = maEnv(t, env, robotPassword+"\n", "login", "--plain-http", "-u", robot, "--password-stdin", h)
			if code != 0 || !strings.Contains(out, "Login Succeeded") {
				t.Fatalf("login: exit %d\n%s", code, out)
			}
			config := read(filepath.Join(cfg, "config.json"))
			if tt.credsStore {
				var kept map[string]struct{ Username, Secret string }
				json.Unmarshal([]byte(read(helperStore)), &kept)
				if kept[h].Username != robot || kept[h].Secret != robotPassword {
					t.Fatalf("the helper holds %+v, want the login", kept)
				}
				if strings.Contains(config, robotPassword) || strings.Contains(config, basic) || !strings.Contains(out, "docker-credential-modelattest-test") {
					t.Fatalf("the secret is in the config file, or the output does not name the helper:\n%s\n%s", config, out)
				}
			} else if !strings.Contains(config, basic) || !strings.Contains(out, "config file") {
				t.Fatalf("config file after login:\n%s\n%s", config, out)
			}

			// Our commands and oras read the login.
			ref := h + "/models/tiny:v1"
			if out, code := maEnv(t, env, "", "push", "--plain-http", "--no-progress", ref, model); code != 0 {
				t.Fatalf("push after login: exit %d\n%s", code, out)
			}
			o := exec.Command(orasCLI, "manifest", "fetch", "--plain-http", ref)
			o.Env = append(os.Environ(), env...)
			if b, err := o.CombinedOutput(); err != nil || !strings.Contains(string(b), "application/vnd.cncf.model") {
				t.Fatalf("oras with our login: %v\n%s", err, b)
			}

			out, code = maEnv(t, env, "", "logout", "--format", "json", h)
			var res struct{ Registry, Store string }
			if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.Registry != h {
				t.Fatalf("logout: exit %d\n%s", code, out)
			}
			if strings.Contains(read(helperStore), robotPassword) || strings.Contains(read(filepath.Join(cfg, "config.json")), basic) {
				t.Fatal("logout left the credentials")
			}
			out, code = maEnv(t, env, "", "inspect", "--plain-http", ref)
			if code != 1 || !strings.Contains(out, "without credentials") || !strings.Contains(out, "Hint: log in with `modelattest login "+h+"`") {
				t.Fatalf("after logout: exit %d\n%s", code, out)
			}
		})
	}
}

// TestErrorsNameTheNextStep: the errors a newcomer meets first say what to
// do: credentials refused names the registry and repository; HTTPS to a
// plain-HTTP registry suggests --plain-http; a --registry-config that does
// not exist is an error, not an empty configuration. No Go map or slice
// syntax reaches the user.
func TestErrorsNameTheNextStep(t *testing.T) {
	h := regtest.Distribution(t, regtest.HtpasswdConfig(regtest.Htpasswd(t, t.TempDir(), robot, robotPassword)))
	plain := regtest.Embedded(t, "")
	layout := filepath.Join(t.TempDir(), "oci")
	ma(t, "pack", "--no-progress", regtest.ModelDir(t, 64), "-o", layout+":v1")
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"wrong password", []string{"inspect", "--plain-http", "-u", robot, "-p", "wrong", h + "/models/tiny:v1"}, 1,
			[]string{"registry " + h + " refused access to repository models/tiny with the credentials given", "Hint: check the user name and password for " + h}},
		{"no credentials", []string{"inspect", "--plain-http", h + "/models/tiny:v1"}, 1,
			[]string{"without credentials", "Hint: log in with `modelattest login " + h + "`", "docker login"}},
		{"HTTPS to a plain-HTTP registry", []string{"inspect", plain + "/models/tiny:v1"}, 1,
			[]string{"Hint: the registry speaks plain HTTP: add --plain-http"}},
		{"missing --registry-config", []string{"inspect", "--plain-http", "--registry-config", filepath.Join(t.TempDir(), "nope.json"), plain + "/models/tiny:v1"}, 1,
			[]string{"registry config", "nope.json", "no such file"}},
		{"--include matching nothing", []string{"pull", "--oci-layout", "--insecure-skip-verify", "-o", filepath.Join(t.TempDir(), "out"), "--include", "*.gguf", "--include", "kind:dataset", layout + ":v1"}, 2,
			[]string{`include "*.gguf", "kind:dataset" matches no file of the model`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := maEnv(t, []string{"DOCKER_CONFIG=" + t.TempDir()}, "", tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\n%s", code, tt.code, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, "map[") || strings.Contains(out, "-rw-") {
				t.Errorf("Go syntax or a raw file mode in the output:\n%s", out)
			}
		})
	}
}

// TestPullJSONCarriesReport: pull --format json prints the verification
// report beside the files, so CI can read the verdict from stdout; when the
// policy refuses the model the report is still printed (exit 3, no files).
func TestPullJSONCarriesReport(t *testing.T) {
	keys := keyDir(t)
	layout := filepath.Join(t.TempDir(), "oci")
	ma(t, "pack", "--no-progress", regtest.ModelDir(t, 256), "-o", layout+":v1")
	ma(t, "sign", "--key", filepath.Join(keys, "cosign.key"), "--oci-layout", layout+":v1")
	ma(t, "attest", "--key", filepath.Join(keys, "cosign.key"), "--type", "slsaprovenance1", "--predicate", filepath.Join(keys, "provenance.json"), "--oci-layout", layout+":v1")
	policy := writeKeyPolicy(t, keys, false)
	type output struct {
		Verification *struct {
			Policy       string `json:"policy"`
			Rule         int    `json:"rule"`
			Passed       bool   `json:"passed"`
			Requirements []struct {
				What      string `json:"what"`
				Satisfied bool   `json:"satisfied"`
				Reason    string `json:"reason"`
			} `json:"requirements"`
		} `json:"verification"`
		Files []struct{ Path string } `json:"files"`
	}
	var got output
	maJSON(t, &got, "pull", "--format", "json", "--oci-layout", "--policy", policy, "-o", filepath.Join(t.TempDir(), "ok"), layout+":v1")
	v := got.Verification
	if v == nil || !v.Passed || v.Rule != 0 || !strings.HasPrefix(v.Policy, "sha256:") || len(v.Requirements) == 0 || !v.Requirements[0].Satisfied || len(got.Files) == 0 {
		t.Fatalf("pull --format json: %+v", got)
	}

	// Another key is required: refused, and the report says why.
	other := keyDir(t)
	refusing := writeKeyPolicy(t, other, false)
	cmd := exec.Command(modelattest, "pull", "--format", "json", "--oci-layout", "--policy", refusing, "-o", filepath.Join(t.TempDir(), "no"), layout+":v1")
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("refused pull: %v\n%s", err, out)
	}
	got = output{}
	if err := json.Unmarshal(out, &got); err != nil || got.Verification == nil || got.Verification.Passed ||
		got.Verification.Requirements[0].Reason == "" || len(got.Files) != 0 {
		t.Fatalf("refused pull printed %v:\n%s", err, out)
	}
}
