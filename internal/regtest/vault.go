package regtest

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// VaultTransit is an in-process stand-in for HashiCorp Vault's transit
// engine (the two calls sigstore's hashivault provider makes) holding key
// as transit key "model-release", for token "test-token": the private key
// never leaves it, as with a real KMS. signs counts the signatures made.
func VaultTransit(t testing.TB, key *ecdsa.PrivateKey, signs *atomic.Int32) *httptest.Server {
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
