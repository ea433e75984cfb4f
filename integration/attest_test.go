package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/referrers"
)

// TestSignAttestDiscoverOnEveryTarget: sign, attest (SLSA, model signing,
// a custom predicate) and discover work on a registry with the Referrers
// API, on the distribution registry (tag schema) and on an OCI layout.
func TestSignAttestDiscoverOnEveryTarget(t *testing.T) {
	keys := keyDir(t)
	card := filepath.Join(keys, "card.json")
	os.WriteFile(card, []byte(`{"intendedUse":"tests","evaluation":{"accuracy":0.91}}`), 0o644)
	for name, target := range map[string]func(t *testing.T) []string{
		"embedded": func(t *testing.T) []string {
			return []string{"--plain-http", regtest.Embedded(t, "") + "/models/tiny:v1"}
		},
		"distribution": func(t *testing.T) []string {
			return []string{"--plain-http", regtest.Distribution(t, "") + "/models/tiny:v1"}
		},
		"oci-layout": func(t *testing.T) []string {
			return []string{"--oci-layout", filepath.Join(t.TempDir(), "layout") + ":v1"}
		},
	} {
		t.Run(name, func(t *testing.T) {
			args := target(t)
			model := regtest.ModelDir(t, 4096)
			ma(t, append(append([]string{"push", "--no-progress"}, args...), model)...)
			key := filepath.Join(keys, "cosign.key")
			ma(t, append([]string{"sign", "--key", key}, args...)...)
			ma(t, append([]string{"attest", "--key", key, "--type", "slsaprovenance1", "--builder-id", "https://ci.acme.example/trainer@v2",
				"--build-type", "https://acme.example/ml-train/v1", "--param", "repo=https://git.acme.example/train",
				"--dependency", "uri=s3://acme-datasets/approved/wiki,digest=sha256:" + strings.Repeat("ab", 32)}, args...)...)
			ma(t, append([]string{"attest", "--key", key, "--type", "model-signing"}, args...)...)
			ma(t, append([]string{"attest", "--key", key, "--type", "https://acme.example/model-card/v1", "--predicate", card}, args...)...)

			out := ma(t, append([]string{"discover", "--format", "json"}, args...)...)
			var root struct {
				Referrers []struct {
					ArtifactType string            `json:"artifactType"`
					Annotations  map[string]string `json:"annotations"`
				} `json:"referrers"`
			}
			if err := json.Unmarshal([]byte(out), &root); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			got := map[string]bool{}
			for _, r := range root.Referrers {
				got[r.Annotations[referrers.AnnotationPredicateType]] = true
			}
			for _, pt := range []string{referrers.PredicateCosignSign, referrers.PredicateSLSAProvenance, referrers.PredicateModelSigning, "https://acme.example/model-card/v1"} {
				if !got[pt] {
					t.Errorf("discover lacks %s: %s", pt, out)
				}
			}
			if tree := ma(t, append([]string{"discover"}, args...)...); !strings.Contains(tree, "predicateType: https://slsa.dev/provenance/v1") {
				t.Errorf("tree:\n%s", tree)
			}

			// pull --model-signature writes the model.sig the policy verified;
			// our OMS check accepts the pulled tree and refuses it after a
			// one-byte change.
			pulled := filepath.Join(t.TempDir(), "pulled")
			ma(t, append([]string{"pull", "--policy", writeKeyPolicy(t, keys, true), "--model-signature", "--no-progress", "-o", pulled}, args...)...)
			if err := verifyPulledOMS(t, keys, pulled); err != nil {
				t.Fatalf("model.sig on the pulled files: %v", err)
			}
			b, _ := os.ReadFile(filepath.Join(pulled, "README.md"))
			b[0] ^= 1
			os.WriteFile(filepath.Join(pulled, "README.md"), b, 0o644)
			if err := verifyPulledOMS(t, keys, pulled); err == nil {
				t.Fatal("a changed file still verified")
			}
		})
	}
}

func verifyPulledOMS(t *testing.T, keys, dir string) error {
	t.Helper()
	v, err := referrers.LoadKeyVerifier(t.Context(), "k", filepath.Join(keys, "cosign.pub"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = referrers.VerifyOMSDirectory(v, dir)
	return err
}

// TestSigningErrorsPushNothing: a wrong password, an unreadable or
// unsupported key, a provenance missing required fields and a malformed
// predicate file each give a clear error and push nothing.
func TestSigningErrorsPushNothing(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("COSIGN_PASSWORD", "right")
	ma(t, "keygen", "--output-key-prefix", filepath.Join(dir, "cosign"))
	proxy := regtest.NewProxy(t, regtest.Embedded(t, ""))
	ref := proxy.Host + "/models/tiny:v1"
	ma(t, "push", "--plain-http", "--no-progress", ref, regtest.ModelDir(t, 100))
	os.WriteFile(filepath.Join(dir, "bad.json"), []byte(`{"buildDefinition":`), 0o644)
	os.WriteFile(filepath.Join(dir, "nobuilder.json"), []byte(`{"buildDefinition":{"buildType":"t","externalParameters":{"a":1}},"runDetails":{"builder":{}}}`), 0o644)
	os.WriteFile(filepath.Join(dir, "dsa.pem"), []byte("-----BEGIN DSA PRIVATE KEY-----\nAAAA\n-----END DSA PRIVATE KEY-----\n"), 0o600)
	key := filepath.Join(dir, "cosign.key")
	tests := []struct {
		name string
		env  string
		args []string
		code int
		want string
	}{
		{"wrong password", "wrong", []string{"sign", "--key", key}, 1, "wrong password"},
		{"unreadable key", "right", []string{"sign", "--key", filepath.Join(dir, "missing.key")}, 1, "no such file"},
		{"unsupported key", "right", []string{"sign", "--key", filepath.Join(dir, "dsa.pem")}, 1, "unsupported PEM block"},
		{"public key", "right", []string{"sign", "--key", filepath.Join(dir, "cosign.pub")}, 1, "cannot sign"},
		{"provenance without builder", "right", []string{"attest", "--key", key, "--type", "slsaprovenance1", "--predicate", filepath.Join(dir, "nobuilder.json")}, 1, "builder"},
		{"provenance flags without builder", "right", []string{"attest", "--key", key, "--type", "slsaprovenance1", "--build-type", "t", "--param", "a=b"}, 1, "runDetails.builder required"},
		{"malformed predicate", "right", []string{"attest", "--key", key, "--type", "https://acme.example/card/v1", "--predicate", filepath.Join(dir, "bad.json")}, 1, "not JSON"},
		{"bad dependency", "right", []string{"attest", "--key", key, "--type", "slsaprovenance1", "--builder-id", "b", "--build-type", "t", "--param", "a=b", "--dependency", "uri=s3://x,digest=sha256:123"}, 2, "lowercase hex"},
		{"no key", "right", []string{"sign"}, 2, "--key"},
		// No $COSIGN_PASSWORD and no terminal to ask on: said so, exit 2,
		// never "wrong password".
		{"password unset", "<unset>", []string{"sign", "--key", key}, 2, "$COSIGN_PASSWORD is unset and standard input is not a terminal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("COSIGN_PASSWORD", tt.env)
			if tt.env == "<unset>" {
				os.Unsetenv("COSIGN_PASSWORD") // t.Setenv restores it
			}
			proxy.Reset()
			out, code := maCode(t, append(append(tt.args, "--plain-http"), ref)...)
			if code != tt.code || !strings.Contains(out, tt.want) || (tt.env != "wrong" && strings.Contains(out, "wrong password")) {
				t.Fatalf("exit %d (want %d), output lacks %q:\n%s", code, tt.code, tt.want, out)
			}
			if n := proxy.Count("PUT", "/v2/") + proxy.Count("POST", "/v2/") + proxy.Count("PATCH", "/v2/"); n != 0 {
				t.Fatalf("%d writes to the registry", n)
			}
		})
	}
}
