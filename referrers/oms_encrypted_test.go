package referrers_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/modelattest/modelattest/encryption"
	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// TestModelSigningEncrypted: a model-signing statement of an encrypted
// model is made from the plaintext and checked, through the config, against
// the model as stored; the manifest alone cannot make one; a plaintext of
// another model is refused; the decrypted pull lands what it signs.
func TestModelSigningEncrypted(t *testing.T) {
	ctx := context.Background()
	keys := t.TempDir()
	sk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, err := referrers.NewSigner(sk)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := cryptoutils.MarshalPublicKeyToPEM(sk.Public())
	os.WriteFile(filepath.Join(keys, "release.pub"), pub, 0o644)
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki, _ := x509.MarshalPKIXPublicKey(&ek.PublicKey)
	p8, _ := x509.MarshalPKCS8PrivateKey(ek)
	recipient, err := encryption.NewRecipient(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}))
	if err != nil {
		t.Fatal(err)
	}
	privPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})

	tgt, err := oras.OpenLayout(filepath.Join(t.TempDir(), "layout"))
	if err != nil {
		t.Fatal(err)
	}
	dir := regtest.ModelDir(t, 4096)
	pushed, err := oras.PushEncrypted(ctx, tgt, "v1", dir, []encryption.Recipient{recipient}, oras.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other, err := oras.PushEncrypted(ctx, tgt, "v2", regtest.ModelDir(t, 4096), []encryption.Recipient{recipient}, oras.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := oras.FetchManifest(ctx, tgt, pushed.Manifest)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("attest from the manifest alone is refused", func(t *testing.T) {
		_, err := referrers.AttestModelSigning(ctx, tgt, pushed.Manifest, signer, "tiny", referrers.AttachOptions{})
		if !errors.Is(err, referrers.ErrEncryptedLayers) || !strings.Contains(err.Error(), "ciphertext") {
			t.Fatalf("err = %v, want ErrEncryptedLayers saying why", err)
		}
		stJSON, _, err := referrers.OMSStatement(pushed.Plaintext.Manifest, "tiny")
		if err != nil {
			t.Fatal(err)
		}
		st, _ := referrers.ParseStatement(stJSON)
		if err := referrers.CheckOMSManifest(st, *m); !errors.Is(err, referrers.ErrEncryptedLayers) {
			t.Fatalf("CheckOMSManifest without the config: %v", err)
		}
	})
	t.Run("another model's plaintext is refused", func(t *testing.T) {
		_, err := referrers.AttestModelSigningPlaintext(ctx, tgt, pushed.Manifest, other.Plaintext.Manifest, signer, "tiny", referrers.AttachOptions{})
		if err == nil || !strings.Contains(err.Error(), "is not the model") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("plaintext statement verifies and the decrypted pull lands it", func(t *testing.T) {
		if _, err := referrers.AttestModelSigningPlaintext(ctx, tgt, pushed.Manifest, pushed.Plaintext.Manifest, signer, "tiny", referrers.AttachOptions{}); err != nil {
			t.Fatal(err)
		}
		p, err := referrers.LoadPolicy(ctx, writePolicy(t, keys, "version: 1\ntrust: {release: {key: release.pub}}\nmodels:\n  - match: [\"**\"]\n    attestations: [{predicateType: model-signing, signers: [release]}]\n"))
		if err != nil {
			t.Fatal(err)
		}
		dk, err := oras.DecryptionKeys(ctx, tgt, pushed.Manifest, privPEM)
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "out")
		rep, _, err := referrers.PullVerified(ctx, tgt, pushed.Manifest, out, p, referrers.PullVerifiedOptions{
			ModelSignature: true, Pull: oras.PullOptions{Decrypt: dk}})
		if err != nil || !rep.Passed {
			t.Fatalf("verified pull: %v", err)
		}
		v, _ := referrers.LoadKeyVerifier(ctx, "release", filepath.Join(keys, "release.pub"))
		if _, err := referrers.VerifyOMSDirectory(v, out); err != nil {
			t.Fatalf("model_signing-style check of the decrypted folder: %v", err)
		}
		os.Remove(filepath.Join(out, "model.sig"))
		regtest.SameTree(t, dir, out)
	})
	t.Run("the decryption key is used only once the policy passed", func(t *testing.T) {
		pass, err := referrers.LoadPolicy(ctx, writePolicy(t, keys, "version: 1\ntrust: {release: {key: release.pub}}\nmodels:\n  - match: [\"**\"]\n    attestations: [{predicateType: model-signing, signers: [release]}]\n"))
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "out")
		if _, _, err := referrers.PullVerified(ctx, tgt, pushed.Manifest, out, pass, referrers.PullVerifiedOptions{DecryptionKey: privPEM}); err != nil {
			t.Fatalf("verified pull with the private key: %v", err)
		}
		regtest.SameTree(t, dir, out)
		// A rule this model fails (it has no signature): the refusal is
		// the policy's, and the key, here not even a key, is never read.
		refuse, err := referrers.LoadPolicy(ctx, writePolicy(t, keys, "version: 1\ntrust: {release: {key: release.pub}}\nmodels:\n  - match: [\"**\"]\n    signatures: {signers: [release]}\n"))
		if err != nil {
			t.Fatal(err)
		}
		out = filepath.Join(t.TempDir(), "refused")
		_, _, err = referrers.PullVerified(ctx, tgt, pushed.Manifest, out, refuse, referrers.PullVerifiedOptions{DecryptionKey: []byte("not a key")})
		if !errors.Is(err, referrers.ErrPolicyNotSatisfied) || strings.Contains(err.Error(), "decryption key") {
			t.Fatalf("err = %v, want the policy's refusal", err)
		}
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists after a refusal (%v)", out, err)
		}
	})
}
