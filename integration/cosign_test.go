package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelattest/modelattest/internal/regtest"
)

// emptyTrustedRoot lets cosign verify key-based signatures offline: no
// transparency log, no CA, no timestamp authority.
const emptyTrustedRoot = `{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1","tlogs":[],"certificateAuthorities":[],"ctlogs":[],"timestampAuthorities":[]}`

// cosignEnv prepares a folder with a cosign key pair (empty password), an
// empty signing config (no Fulcio, no Rekor, no TSA) and an empty trusted
// root, and returns the folder.
func cosignEnv(t *testing.T, cosign string) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("COSIGN_PASSWORD", "")
	run := func(args ...string) string {
		t.Helper()
		cmd := append([]string{}, args...)
		out, err := regtest.RunIn(dir, cosign, cmd...)
		if err != nil {
			t.Fatalf("cosign %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	run("generate-key-pair")
	if strings.Contains(filepath.Base(cosign), "v3") {
		run("signing-config", "create", "--out", "signing-config.json")
	}
	if err := os.WriteFile(filepath.Join(dir, "trusted_root.json"), []byte(emptyTrustedRoot), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestCosignV3SignsAndVerifiesOnEmbeddedRegistry: cosign v3 stores its
// bundle as a referrer through our Referrers API and verifies it back;
// oras discover sees it with the bundle artifactType.
func TestCosignV3SignsAndVerifiesOnEmbeddedRegistry(t *testing.T) {
	cosign := regtest.Tool(t, "cosign-v3")
	oras := regtest.Tool(t, "oras")
	keys := cosignEnv(t, cosign)
	h := regtest.Embedded(t, "")
	digest := digestOf(t, ma(t, "push", "--plain-http", "--no-progress", h+"/models/tiny:v1", regtest.ModelDir(t, 1000)))
	ref := h + "/models/tiny@" + digest

	out, err := regtest.RunIn(keys, cosign, "sign", "--key", "cosign.key", "--signing-config", "signing-config.json",
		"--allow-http-registry", "--yes", ref)
	if err != nil {
		t.Fatalf("cosign sign: %v\n%s", err, out)
	}
	out, err = regtest.RunIn(keys, cosign, "verify", "--key", "cosign.pub", "--insecure-ignore-tlog",
		"--trusted-root", "trusted_root.json", "--allow-http-registry", ref)
	if err != nil {
		t.Fatalf("cosign verify: %v\n%s", err, out)
	}
	if !strings.Contains(out, digest) {
		t.Fatalf("cosign verify output does not name the model:\n%s", out)
	}
	tree := regtest.Run(t, oras, "discover", "--plain-http", "--distribution-spec", "v1.1-referrers-api", ref)
	if !strings.Contains(tree, "application/vnd.dev.sigstore.bundle.v0.3+json") || !strings.Contains(tree, "https://sigstore.dev/cosign/sign/v1") {
		t.Fatalf("oras discover:\n%s", tree)
	}
	// A different key must not verify.
	other := cosignEnv(t, cosign)
	if out, err := regtest.RunIn(other, cosign, "verify", "--key", "cosign.pub", "--insecure-ignore-tlog",
		"--trusted-root", "trusted_root.json", "--allow-http-registry", ref); err == nil {
		t.Fatalf("cosign verified with the wrong key:\n%s", out)
	}
}
