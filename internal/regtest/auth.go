package regtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TokenService is a Docker-registry token service as Harbor runs one
// (GET /service/token?service=…&scope=…, basic auth, no POST): it signs
// JWTs the distribution registry checks against its certificate.
type TokenService struct {
	URL, Service, Issuer string
	// CertPath is the signing certificate, for the registry's rootcertbundle.
	CertPath string

	user, password string
	key            *ecdsa.PrivateKey
	cert           []byte
	mu             sync.Mutex
	issued         []string
	posts          int
	scopes         [][]string
	grant          func(repository string, actions []string) []string
}

// NewTokenService starts a token service that grants user/password every
// action it asks for, and refuses everyone else.
func NewTokenService(t testing.TB, user, password string) *TokenService {
	t.Helper()
	ts := &TokenService{Service: "harbor-registry", Issuer: "modelattest-test-issuer", user: user, password: password}
	ts.key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "token signer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, ts.key.Public(), ts.key)
	if err != nil {
		t.Fatal(err)
	}
	ts.cert = der
	ts.CertPath = filepath.Join(t.TempDir(), "token-signer.pem")
	os.WriteFile(ts.CertPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	srv := httptest.NewServer(http.HandlerFunc(ts.serve))
	t.Cleanup(srv.Close)
	ts.URL = srv.URL + "/service/token"
	return ts
}

func (ts *TokenService) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		ts.mu.Lock()
		ts.posts++
		ts.mu.Unlock()
		w.WriteHeader(http.StatusMethodNotAllowed) // as Harbor does
		return
	}
	u, p, ok := r.BasicAuth()
	if !ok || u != ts.user || p != ts.password {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	type access struct {
		Type    string   `json:"type"`
		Name    string   `json:"name"`
		Actions []string `json:"actions"`
	}
	var grants []access
	ts.mu.Lock()
	grant := ts.grant
	ts.scopes = append(ts.scopes, r.URL.Query()["scope"])
	ts.mu.Unlock()
	for _, scope := range r.URL.Query()["scope"] {
		parts := strings.Split(scope, ":")
		if len(parts) != 3 {
			continue
		}
		actions := strings.Split(parts[2], ",")
		if grant != nil {
			actions = grant(parts[1], actions)
		}
		grants = append(grants, access{Type: parts[0], Name: parts[1], Actions: actions})
	}
	now := time.Now()
	header, _ := json.Marshal(map[string]any{"alg": "ES256", "typ": "JWT", "x5c": []string{base64.StdEncoding.EncodeToString(ts.cert)}})
	claims, _ := json.Marshal(map[string]any{"iss": ts.Issuer, "sub": u, "aud": r.URL.Query().Get("service"),
		"exp": now.Add(5 * time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(),
		"jti": fmt.Sprint(now.UnixNano()), "access": grants})
	enc := base64.RawURLEncoding.EncodeToString
	signed := enc(header) + "." + enc(claims)
	h := sha256.Sum256([]byte(signed))
	rr, ss, _ := ecdsa.Sign(rand.Reader, ts.key, h[:])
	sig := make([]byte, 64)
	rr.FillBytes(sig[:32])
	ss.FillBytes(sig[32:])
	tok := signed + "." + enc(sig)
	ts.mu.Lock()
	ts.issued = append(ts.issued, tok)
	ts.mu.Unlock()
	json.NewEncoder(w).Encode(map[string]any{"token": tok, "access_token": tok, "expires_in": 300, "issued_at": now.Format(time.RFC3339)})
}

// Issued lists every token handed out.
func (ts *TokenService) Issued() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]string(nil), ts.issued...)
}

// SetGrant narrows what the service grants: f returns the actions allowed
// on a repository out of those asked (nil f: all of them).
func (ts *TokenService) SetGrant(f func(repository string, actions []string) []string) {
	ts.mu.Lock()
	ts.grant = f
	ts.mu.Unlock()
}

// Scopes lists the scope parameters of each token request, in order.
func (ts *TokenService) Scopes() [][]string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([][]string(nil), ts.scopes...)
}

// Posts counts POST requests (Harbor answers them 405).
func (ts *TokenService) Posts() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.posts
}

// RegistryConfig is the distribution registry's auth section for this service.
func (ts *TokenService) RegistryConfig() string {
	return fmt.Sprintf("auth:\n  token:\n    realm: %s\n    service: %s\n    issuer: %s\n    rootcertbundle: %s\n",
		ts.URL, ts.Service, ts.Issuer, ts.CertPath)
}

// HtpasswdConfig is the distribution registry's auth section for an
// htpasswd file.
func HtpasswdConfig(path string) string {
	return fmt.Sprintf("auth:\n  htpasswd:\n    realm: modelattest-test\n    path: %s\n", path)
}

// CredentialHelper builds the test credential helper as
// docker-credential-<name> in a new folder and returns that folder (to put
// on PATH).
func CredentialHelper(t testing.TB, name string) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "docker-credential-"+name),
		filepath.Join(RepoRoot(t), "internal", "regtest", "credhelper")).CombinedOutput()
	if err != nil {
		t.Fatalf("build credential helper: %v\n%s", err, out)
	}
	return dir
}
