package registry_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/crypto/bcrypt"

	"github.com/modelattest/modelattest/registry"
)

func newServer(t *testing.T, cfg registry.Config) *httptest.Server {
	t.Helper()
	if cfg.RootDir == "" {
		cfg.RootDir = t.TempDir()
	}
	s, err := registry.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() { srv.Close(); s.Close(context.Background()) })
	return srv
}

func do(t *testing.T, method, url string, body []byte, header ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func pushBlob(t *testing.T, base, repo string, b []byte) digest.Digest {
	t.Helper()
	d := digest.FromBytes(b)
	resp := do(t, "POST", base+"/v2/"+repo+"/blobs/uploads/", nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST upload: %s", resp.Status)
	}
	loc, _ := resp.Location()
	q := loc.Query()
	q.Set("digest", d.String())
	loc.RawQuery = q.Encode()
	if r := do(t, "PUT", loc.String(), b, "Content-Type", "application/octet-stream"); r.StatusCode != http.StatusCreated {
		t.Fatalf("PUT blob: %s", r.Status)
	}
	return d
}

// pushManifest pushes a manifest with an optional subject and returns its
// descriptor and the response.
func pushManifest(t *testing.T, base, repo, artifactType string, subject *ocispec.Descriptor, annotations map[string]string) (ocispec.Descriptor, *http.Response) {
	t.Helper()
	cfg := []byte("{}")
	cd := pushBlob(t, base, repo, cfg)
	layer := []byte(fmt.Sprintf("layer of %s %v", artifactType, subject != nil))
	ld := pushBlob(t, base, repo, layer)
	m := map[string]any{
		"schemaVersion": 2, "mediaType": ocispec.MediaTypeImageManifest,
		"config": ocispec.Descriptor{MediaType: "application/vnd.oci.empty.v1+json", Digest: cd, Size: 2},
		"layers": []ocispec.Descriptor{{MediaType: "application/octet-stream", Digest: ld, Size: int64(len(layer))}},
	}
	if artifactType != "" {
		m["artifactType"] = artifactType
	}
	if subject != nil {
		m["subject"] = subject
	}
	if annotations != nil {
		m["annotations"] = annotations
	}
	b, _ := json.Marshal(m)
	d := digest.FromBytes(b)
	resp := do(t, "PUT", base+"/v2/"+repo+"/manifests/"+d.String(), b, "Content-Type", ocispec.MediaTypeImageManifest)
	if resp.StatusCode != http.StatusCreated {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("PUT manifest: %s %s", resp.Status, body)
	}
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d, Size: int64(len(b))}, resp
}

func referrers(t *testing.T, base, repo string, subject digest.Digest, query string) (ocispec.Index, *http.Response) {
	t.Helper()
	resp := do(t, "GET", base+"/v2/"+repo+"/referrers/"+subject.String()+query, nil)
	var idx ocispec.Index
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&idx); err != nil {
			t.Fatal(err)
		}
	}
	return idx, resp
}

func TestReferrersAPI(t *testing.T) {
	srv := newServer(t, registry.Config{})
	base := srv.URL
	subject, resp := pushManifest(t, base, "models/tiny", "", nil, nil)
	if resp.Header.Get("OCI-Subject") != "" {
		t.Fatal("OCI-Subject on a manifest without a subject")
	}
	sig, resp := pushManifest(t, base, "models/tiny", "application/vnd.example.sig", &subject, map[string]string{"k": "v"})
	if got := resp.Header.Get("OCI-Subject"); got != subject.Digest.String() {
		t.Fatalf("OCI-Subject = %q, want %s", got, subject.Digest)
	}
	noType, _ := pushManifest(t, base, "models/tiny", "", &subject, nil)

	idx, resp := referrers(t, base, "models/tiny", subject.Digest, "")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ocispec.MediaTypeImageIndex {
		t.Fatalf("referrers: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	if len(idx.Manifests) != 2 {
		t.Fatalf("referrers = %v", idx.Manifests)
	}
	byDigest := map[digest.Digest]ocispec.Descriptor{}
	for _, d := range idx.Manifests {
		byDigest[d.Digest] = d
	}
	if d := byDigest[sig.Digest]; d.ArtifactType != "application/vnd.example.sig" || d.Annotations["k"] != "v" || d.Size != sig.Size {
		t.Errorf("signature listed as %+v", d)
	}
	// Without artifactType a manifest is listed under its config media type.
	if d := byDigest[noType.Digest]; d.ArtifactType != "application/vnd.oci.empty.v1+json" {
		t.Errorf("untyped referrer listed as %+v", d)
	}

	idx, resp = referrers(t, base, "models/tiny", subject.Digest, "?artifactType=application/vnd.example.sig")
	if resp.Header.Get("OCI-Filters-Applied") != "artifactType" || len(idx.Manifests) != 1 || idx.Manifests[0].Digest != sig.Digest {
		t.Fatalf("filtered: %v %v", resp.Header, idx.Manifests)
	}
	// Another repository does not see them; an unknown subject has none.
	if idx, _ := referrers(t, base, "other/repo", subject.Digest, ""); len(idx.Manifests) != 0 {
		t.Fatalf("referrers leaked across repositories: %v", idx.Manifests)
	}
	if idx, resp := referrers(t, base, "models/tiny", digest.FromString("nothing"), ""); resp.StatusCode != 200 || len(idx.Manifests) != 0 || idx.Manifests == nil {
		t.Fatalf("unknown subject: %s %v", resp.Status, idx.Manifests)
	}
	if _, resp := referrers(t, base, "models/tiny", "sha256:nothex", ""); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad digest: %s", resp.Status)
	}

	// Deleting a referrer removes it from the index.
	if r := do(t, "DELETE", base+"/v2/models/tiny/manifests/"+sig.Digest.String(), nil); r.StatusCode != http.StatusAccepted {
		t.Fatalf("delete: %s", r.Status)
	}
	if idx, _ := referrers(t, base, "models/tiny", subject.Digest, ""); len(idx.Manifests) != 1 || idx.Manifests[0].Digest != noType.Digest {
		t.Fatalf("after delete: %v", idx.Manifests)
	}
}

func TestReferrersSurviveRestartAndRebuild(t *testing.T) {
	root := t.TempDir()
	ctx := context.Background()
	s, err := registry.New(ctx, registry.Config{RootDir: root})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	subject, _ := pushManifest(t, srv.URL, "models/tiny", "", nil, nil)
	sig, _ := pushManifest(t, srv.URL, "models/tiny", "application/vnd.example.sig", &subject, nil)
	srv.Close()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// Lose the index entirely: the next start rebuilds it from the manifests.
	if err := os.RemoveAll(filepath.Join(root, "modelattest")); err != nil {
		t.Fatal(err)
	}
	srv2 := newServer(t, registry.Config{RootDir: root})
	idx, _ := referrers(t, srv2.URL, "models/tiny", subject.Digest, "")
	if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != sig.Digest || idx.Manifests[0].ArtifactType != "application/vnd.example.sig" {
		t.Fatalf("after rebuild: %v", idx.Manifests)
	}
}

func TestBasicAuthCoversReferrers(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	htpasswd := filepath.Join(t.TempDir(), "htpasswd")
	os.WriteFile(htpasswd, []byte("robot$ml+ci:"+string(hash)+"\n"), 0o600)
	srv := newServer(t, registry.Config{HtpasswdFile: htpasswd})
	for _, path := range []string{"/v2/", "/v2/models/tiny/tags/list", "/v2/models/tiny/referrers/" + digest.FromString("x").String()} {
		resp := do(t, "GET", srv.URL+path, nil)
		if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
			t.Errorf("GET %s without credentials: %s %q", path, resp.Status, resp.Header.Get("WWW-Authenticate"))
		}
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.SetBasicAuth("robot$ml+ci", "wrong")
		if r, _ := http.DefaultClient.Do(req); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong password: %s", path, r.Status)
		}
	}
	req, _ := http.NewRequest("GET", srv.URL+"/v2/models/tiny/referrers/"+digest.FromString("x").String(), nil)
	req.SetBasicAuth("robot$ml+ci", "s3cret")
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != http.StatusOK {
		t.Fatalf("referrers with credentials: %v %v", r.Status, err)
	}
}

func TestHealthz(t *testing.T) {
	srv := newServer(t, registry.Config{})
	if r := do(t, "GET", srv.URL+"/healthz", nil); r.StatusCode != 200 {
		t.Fatalf("healthz: %s", r.Status)
	}
}

func TestManifestSizeLimit(t *testing.T) {
	srv := newServer(t, registry.Config{MaxManifestBytes: 1024})
	big := []byte(`{"schemaVersion":2,"annotations":{"a":"` + strings.Repeat("x", 2000) + `"}}`)
	r := do(t, "PUT", srv.URL+"/v2/models/tiny/manifests/v1", big, "Content-Type", ocispec.MediaTypeImageManifest)
	if r.StatusCode != http.StatusBadRequest {
		t.Fatalf("oversized manifest: %s", r.Status)
	}
}

// TestTLS serves HTTPS from cert/key files; a client that trusts the CA
// pushes and pulls, one that does not is refused.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	kb, _ := x509.MarshalPKCS8PrivateKey(key)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600)

	ctx := context.Background()
	s, err := registry.Start(ctx, registry.Config{Addr: "127.0.0.1:0", RootDir: t.TempDir(), TLSCert: certPath, TLSKey: keyPath})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)

	pool := x509.NewCertPool()
	c, _ := x509.ParseCertificate(der)
	pool.AddCert(c)
	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := trusting.Get("https://" + s.Addr() + "/v2/")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v2/ over TLS: %v %v", resp, err)
	}
	resp.Body.Close()
	if _, err := http.Get("https://" + s.Addr() + "/v2/"); err == nil {
		t.Fatal("a client that does not trust the certificate connected")
	}
	if resp, err := http.Get("http://" + s.Addr() + "/v2/"); err == nil && resp.StatusCode == http.StatusOK {
		t.Fatal("plain HTTP was served on the TLS port")
	}
}
