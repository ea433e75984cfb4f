package referrers_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/modelattest/modelattest/referrers"
)

// vaultTransit is an in-process stand-in for HashiCorp Vault's transit
// engine (the two calls sigstore's hashivault provider makes): the private
// key never leaves it, as with a real KMS.
func vaultTransit(t *testing.T, key *ecdsa.PrivateKey, signs *atomic.Int32) *httptest.Server {
	t.Helper()
	der, _ := x509.MarshalPKIXPublicKey(key.Public())
	pubPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Vault-Token") != "test-token" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/v1/transit/keys/model-release":
			json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{
				"latest_version": 1,
				"keys":           map[string]any{"1": map[string]any{"public_key": pubPEM, "name": "P-256"}},
			}})
		case (r.Method == http.MethodPost || r.Method == http.MethodPut) && r.URL.Path == "/v1/transit/sign/model-release/sha2-256":
			var req struct {
				Input     string `json:"input"`
				Prehashed bool   `json:"prehashed"`
			}
			json.NewDecoder(r.Body).Decode(&req)
			digest, _ := base64.StdEncoding.DecodeString(req.Input)
			if !req.Prehashed || len(digest) != 32 {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			sig, _ := ecdsa.SignASN1(rand.Reader, key, digest)
			signs.Add(1)
			json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"signature": "vault:v1:" + base64.StdEncoding.EncodeToString(sig)}})
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestKMSSigner signs through sigstore's KMS provider for hashivault://
// (compiled in, as are awskms://, gcpkms:// and azurekms://), against a
// stand-in transit engine, and verifies with the KMS public key.
func TestKMSSigner(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var signs atomic.Int32
	srv := vaultTransit(t, key, &signs)
	t.Setenv("VAULT_ADDR", srv.URL)
	t.Setenv("VAULT_TOKEN", "test-token")
	ctx := context.Background()

	s, err := referrers.LoadSigner(ctx, "hashivault://model-release", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, subject, bundle := signedModel(t, s)
	if signs.Load() != 1 {
		t.Fatalf("the KMS signed %d times, want 1", signs.Load())
	}
	for name, v := range map[string]func() (*referrers.Verifier, error){
		"KMS URI": func() (*referrers.Verifier, error) {
			return referrers.LoadKeyVerifier(ctx, "kms", "hashivault://model-release")
		},
		"public key": func() (*referrers.Verifier, error) { return referrers.NewKeyVerifier("pub", key.Public()) },
	} {
		ver, err := v()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ver.Verify(bundle, subject.Digest); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	for _, bad := range []string{"hashivault://no-such-key", "gcpkms://not/a/valid/ref", "nosuchkms://x"} {
		if _, err := referrers.LoadSigner(ctx, bad, nil); err == nil || !strings.Contains(err.Error(), "signing key") {
			t.Errorf("%s: err = %v", bad, err)
		}
	}
}
