package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/referrers"
)

// omsFixtures is model_signing's own test data (referrers/testdata/oms,
// see referrers/testdata/NOTICE).
const omsFixtures = "../referrers/testdata/oms"

// copyTree copies the regular files of a fixture folder (one level).
func copyTree(t *testing.T, src, dst string) string {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	es, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// omsSignFile signs one file as `model_signing sign` does for a single
// file (one resource named "."), with s; the tool itself cannot run here.
func omsSignFile(t *testing.T, s *referrers.Signer, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	root := sha256.Sum256(h[:])
	pred := fmt.Sprintf(`{"resources":[{"algorithm":"sha256","name":".","digest":%q}],"serialization":{"method":"files","hash_type":"sha256","allow_symlinks":false,"ignore_paths":[".git",".gitattributes",".github",".gitignore"]}}`,
		hex.EncodeToString(h[:]))
	st, err := referrers.NewStatement(digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(root[:])), filepath.Base(file), referrers.PredicateModelSigning, json.RawMessage(pred))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.SignStatement(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// TestVerifyLocal runs `modelattest verify-local` on folders and files on
// disk for each signer kind and checks the exit code: 0 verified, 3
// verification failed, 1 could not run, 2 bad command line.
func TestVerifyLocal(t *testing.T) {
	ctx := context.Background()
	work := t.TempDir()
	keys := filepath.Join(omsFixtures, "keys")
	pub := filepath.Join(keys, "signing-key-pub.pem")
	ca := filepath.Join(keys, "ca-cert.pem")
	wrongKey := "../referrers/testdata/cosign/cosign.pub"
	elliptic := filepath.Join(omsFixtures, "v1.1.0-elliptic-key")
	certificate := filepath.Join(omsFixtures, "v1.1.0-certificate")

	changed := copyTree(t, elliptic, filepath.Join(work, "changed"))
	os.WriteFile(filepath.Join(changed, "signme-1"), []byte("tampered"), 0o644)
	extra := copyTree(t, elliptic, filepath.Join(work, "extra"))
	os.WriteFile(filepath.Join(extra, "notes.txt"), []byte("x"), 0o644)
	linked := copyTree(t, elliptic, filepath.Join(work, "linked"))
	os.Symlink("/etc/hostname", filepath.Join(linked, "link"))
	unsigned := copyTree(t, elliptic, filepath.Join(work, "unsigned"))
	os.Remove(filepath.Join(unsigned, "model.sig"))

	// A single file signed with model_signing's test key.
	s, err := referrers.LoadSigner(ctx, filepath.Join(keys, "signing-key.pem"), nil)
	if err != nil {
		t.Fatal(err)
	}
	single := filepath.Join(work, "single", "model.gguf")
	os.MkdirAll(filepath.Dir(single), 0o755)
	os.WriteFile(single, []byte("GGUF tiny model"), 0o644)
	singleSig := filepath.Join(work, "model.gguf.sig")
	os.WriteFile(singleSig, omsSignFile(t, s, single), 0o644)
	singleChanged := filepath.Join(work, "single-changed.gguf")
	os.WriteFile(singleChanged, []byte("GGUF tiny modem"), 0o644)

	// Keyless: signed through the in-process Fulcio and Rekor.
	ss := regtest.NewSigstore(t)
	trustedRoot := filepath.Join(work, "trusted_root.json")
	os.WriteFile(trustedRoot, ss.TrustedRootJSON, 0o644)
	ks, err := referrers.NewKeylessSigner(ctx, referrers.KeylessOptions{FulcioURL: ss.FulcioURL, RekorURL: ss.RekorURL, IDToken: ss.Token(t, regtest.TestIdentity)})
	if err != nil {
		t.Fatal(err)
	}
	keylessSig := filepath.Join(work, "keyless.sig")
	os.WriteFile(keylessSig, omsSignFile(t, ks, single), 0o644)
	var bm map[string]any
	b, _ := os.ReadFile(keylessSig)
	json.Unmarshal(b, &bm)
	bm["verificationMaterial"].(map[string]any)["tlogEntries"] = []any{}
	b, _ = json.Marshal(bm)
	noLogSig := filepath.Join(work, "nolog.sig")
	os.WriteFile(noLogSig, b, 0o644)
	keyless := []string{"--certificate-identity", regtest.TestIdentity, "--certificate-oidc-issuer", regtest.TestIssuer, "--trusted-root", trustedRoot}

	// A policy whose rules match folders by absolute path.
	pubCopy := filepath.Join(work, "oms.pub")
	pb, _ := os.ReadFile(pub)
	os.WriteFile(pubCopy, pb, 0o644)
	good := copyTree(t, elliptic, filepath.Join(work, "models", "good"))
	rejected := copyTree(t, elliptic, filepath.Join(work, "models", "rejected"))
	policy := filepath.Join(work, "policy.yaml")
	os.WriteFile(policy, []byte(fmt.Sprintf(`version: 1
trust:
  oms: {key: oms.pub}
models:
  - match: [%q]
    attestations: [{predicateType: model-signing, signers: [oms]}]
  - match: ["**"]
    reject: true
`, filepath.Join(work, "models", "good"))), 0o644)

	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"folder, key", []string{elliptic, "--key", pub}, 0, "Result:     PASS"},
		{"folder, certificate chain", []string{certificate, "--certificate-chain", ca}, 0, "PASS"},
		{"folder, policy", []string{good, "--policy", policy}, 0, "PASS"},
		{"single file, key", []string{single, "--signature", singleSig, "--key", pub}, 0, "(file)"},
		{"single file, keyless", []string{single, "--signature", keylessSig}, 0, "PASS"},
		{"extra file under --ignore-paths", []string{extra, "--key", pub, "--ignore-paths", "notes.txt"}, 0, "PASS"},
		{"file changed", []string{changed, "--key", pub}, 3, `file "signme-1": digest`},
		{"extra file", []string{extra, "--key", pub}, 3, `file "notes.txt" is not covered`},
		{"symlink in the folder", []string{linked, "--key", pub}, 3, "not a regular file"},
		{"wrong key", []string{elliptic, "--key", wrongKey}, 3, "does not verify against a trusted signer"},
		{"certificate bundle, key", []string{certificate, "--key", pub}, 3, "FAIL"},
		{"single file changed", []string{singleChanged, "--signature", singleSig, "--key", pub}, 3, `file ".": digest`},
		{"keyless, wrong identity", []string{single, "--signature", keylessSig, "--certificate-identity", "intern@acme.example",
			"--certificate-oidc-issuer", regtest.TestIssuer, "--trusted-root", trustedRoot}, 3, "FAIL"},
		{"keyless bundle without a log entry", []string{single, "--signature", noLogSig}, 3, "FAIL"},
		{"policy rule rejects", []string{rejected, "--policy", policy}, 3, "rejects every matching model"},
		{"no model.sig", []string{unsigned, "--key", pub}, 1, "model.sig"},
		{"no such path", []string{filepath.Join(work, "nope"), "--key", pub}, 1, "no such file"},
		{"single file without --signature", []string{single, "--key", pub}, 1, "name its signature file"},
		{"unreadable key", []string{elliptic, "--key", filepath.Join(work, "nope.pub")}, 1, "nope.pub"},
		{"no signer", []string{elliptic}, 2, "exactly one signer"},
		{"two signers", []string{elliptic, "--key", pub, "--policy", policy}, 2, "exactly one signer"},
		{"keyless without a trusted root", []string{single, "--signature", keylessSig, "--certificate-identity", regtest.TestIdentity,
			"--certificate-oidc-issuer", regtest.TestIssuer}, 2, "--trusted-root"},
		{"no path", []string{"--key", pub}, 2, "accepts 1 arg"},
		{"bad format", []string{elliptic, "--key", pub, "--format", "yaml"}, 2, "yaml"},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := c.args
			if strings.Contains(c.name, "keyless") && !strings.Contains(c.name, "wrong identity") && !strings.Contains(c.name, "trusted root") {
				args = append(args, keyless...)
			}
			out, code := maCode(t, append([]string{"verify-local"}, args...)...)
			if code != c.code || !strings.Contains(out, c.want) {
				t.Fatalf("exit %d (want %d), output lacks %q:\n%s", code, c.code, c.want, out)
			}
		})
	}

	t.Run("json report", func(t *testing.T) {
		out := ma(t, "verify-local", elliptic, "--key", pub, "--ignore-paths", "ignore-me", "--format", "json")
		var rep referrers.OMSPathReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if !rep.Passed || rep.Kind != "directory" || rep.Files != 2 || rep.Name != "v1.1.0-elliptic-key" ||
			!strings.Contains(strings.Join(rep.IgnorePaths, ","), "ignore-me") {
			t.Fatalf("report: %+v", rep)
		}
	})
}
