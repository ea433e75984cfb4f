package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/modelattest/modelattest/internal/regtest"
)

// TestCLISignsWithHashiVault: the CLI (which registers the KMS providers,
// the library registers none) signs through hashivault:// against a
// stand-in transit engine; a policy trusting the KMS key, given either as
// the URI or as its public key, accepts the signature.
func TestCLISignsWithHashiVault(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var signs atomic.Int32
	vault := regtest.VaultTransit(t, key, &signs)
	t.Setenv("VAULT_ADDR", vault.URL)
	t.Setenv("VAULT_TOKEN", "test-token")

	h := regtest.Embedded(t, "")
	digest := digestOf(t, ma(t, "push", "--plain-http", "--no-progress", h+"/models/kms:v1", regtest.ModelDir(t, 2048)))
	ref := h + "/models/kms@" + digest
	ma(t, "sign", "--plain-http", "--key", "hashivault://model-release", ref)
	if signs.Load() != 1 {
		t.Fatalf("the KMS signed %d times, want 1", signs.Load())
	}

	dir := t.TempDir()
	pub, _ := cryptoutils.MarshalPublicKeyToPEM(key.Public())
	os.WriteFile(filepath.Join(dir, "vault.pub"), pub, 0o644)
	for name, anchor := range map[string]string{"KMS URI": "hashivault://model-release", "public key": "vault.pub"} {
		policy := filepath.Join(dir, "policy-"+filepath.Base(anchor)+".yaml")
		os.WriteFile(policy, []byte("version: 1\ntrust: {vault: {key: \""+anchor+"\"}}\nmodels:\n  - match: [\"**\"]\n    signatures: {signers: [vault]}\n"), 0o644)
		if out, code := maCode(t, "verify", "--plain-http", "--policy", policy, ref); code != 0 {
			t.Fatalf("%s: verify exit %d\n%s", name, code, out)
		}
	}
}
