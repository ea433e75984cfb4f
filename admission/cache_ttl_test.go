package admission

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// pkiSigner makes a root CA (valid an hour, written to dir/root.pem) and a
// code-signing leaf under it that expires at leafNotAfter, and returns a
// signer carrying the chain.
func pkiSigner(t *testing.T, dir string, leafNotAfter time.Time) *referrers.Signer {
	t.Helper()
	now := time.Now()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rootT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Root", Organization: []string{"Acme"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootT, rootT, rootKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(rootDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafT := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "ml-release", Organization: []string{"Acme"}},
		NotBefore: now.Add(-time.Hour), NotAfter: leafNotAfter, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafT, root, leafKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "root.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	s, _ := referrers.NewSigner(leafKey)
	s, err = s.WithCertificateChain(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCacheNeverOutlivesTheEvidence: a pass is cached for the TTL when
// nothing it rests on expires (a plain key), and never past the earliest
// certificate expiry (an X.509 leaf expiring in 2 s) or the rule's VSA
// maxAge. On the code before, the expired leaf's and the aged VSA's passes
// were served from the cache for the whole TTL: both were admitted after
// their evidence had lapsed.
func TestCacheNeverOutlivesTheEvidence(t *testing.T) {
	f := newFixture(t)
	vsaKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	vsaSigner, _ := referrers.NewSigner(vsaKey)
	der, _ := x509.MarshalPKIXPublicKey(vsaKey.Public())
	if err := os.WriteFile(filepath.Join(f.dir, "gate.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	const policyDigest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	f.writePolicy(`version: 1
trust:
  release: {key: release.pub}
  corp: {x509: {roots: root.pem, subject: "CN=ml-release,O=Acme"}}
  gate: {key: gate.pub}
models:
  - match: ["{{HOST}}/models/**"]
    signatures: {signers: [release]}
  - match: ["{{HOST}}/corp/**"]
    signatures: {signers: [corp]}
  - match: ["{{HOST}}/gated/**"]
    attestations:
      - predicateType: vsa
        signers: [gate]
        vsa: {verifierIDs: ["https://gate.example"], policyDigests: ["` + policyDigest + `"], maxAge: 1h}
`)
	f.push("models/llama", "v1", true)
	corpModel := f.push("corp/llama", "v1", false)
	gated := f.push("gated/llama", "v1", false)
	ctx := context.Background()
	leafExpires := time.Now().Add(3 * time.Second)
	corp := pkiSigner(t, f.dir, leafExpires)
	for _, m := range []struct {
		repo string
		sign func(*oras.Target) error
	}{
		{"corp/llama", func(tg *oras.Target) error {
			_, err := referrers.Sign(ctx, tg, corpModel, corp, referrers.AttachOptions{})
			return err
		}},
		{"gated/llama", func(tg *oras.Target) error {
			// A summary made an hour ago less 4 s: it ages out 4 s from now.
			rep := &referrers.Report{Repository: f.host + "/gated/llama", Model: gated, Policy: policyDigest, Passed: true,
				VerifiedAt: time.Now().Add(-time.Hour + 4*time.Second)}
			_, err := referrers.AttachVSA(ctx, tg, gated, vsaSigner, rep, referrers.VSAOptions{VerifierID: "https://gate.example"})
			return err
		}},
	} {
		tg, err := oras.OpenRemote(ctx, f.host+"/"+m.repo, oras.RemoteOptions{PlainHTTP: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.sign(tg); err != nil {
			t.Fatalf("%s: %v", m.repo, err)
		}
	}
	w := f.webhook(Options{CacheTTL: time.Hour})
	pod := func(repo string) map[string]any { return volumePod(f.host+"/"+repo+":v1", nil) }
	entry := func(repo string) (time.Time, *referrers.Report, bool) {
		w.cache.mu.Lock()
		defer w.cache.mu.Unlock()
		for k, e := range w.cache.decisions {
			if strings.HasSuffix(k.repository, "/"+repo) {
				return e.expires, e.v, true
			}
		}
		return time.Time{}, nil, false
	}

	start := time.Now()
	for _, repo := range []string{"models/llama", "corp/llama", "gated/llama"} {
		if r, _ := f.review(t, w, podRequest("ml", pod(repo)), false); !r.Allowed {
			t.Fatalf("%s: %+v", repo, r.Result)
		}
	}
	if exp, rep, ok := entry("models/llama"); !ok || exp.Before(start.Add(59*time.Minute)) || !rep.ValidUntil.IsZero() {
		t.Errorf("plain key: cached until %s (found %v, ValidUntil %v), want the 1 h TTL", exp, ok, rep)
	}
	exp, rep, ok := entry("corp/llama")
	if !ok || exp.After(leafExpires) {
		t.Fatalf("X.509 leaf expiring at %s: cached until %s (found %v)", leafExpires, exp, ok)
	}
	// The report says when its certificate lapses.
	if !rep.ValidUntil.Equal(leafExpires.Truncate(time.Second).UTC()) {
		t.Errorf("report ValidUntil %v, want the leaf's NotAfter %s", rep.ValidUntil, leafExpires.UTC())
	}
	if b, _ := json.Marshal(rep); !strings.Contains(string(b), `"validUntil"`) {
		t.Errorf("the report's JSON does not carry validUntil: %s", b)
	}
	if _, _, ok := entry("gated/llama"); ok {
		t.Error("a pass whose VSA ages out within the TTL was cached")
	}

	time.Sleep(time.Until(leafExpires.Add(2 * time.Second)))
	f.proxy.Reset()
	if r, _ := f.review(t, w, podRequest("ml", pod("models/llama")), false); !r.Allowed {
		t.Fatalf("plain key after 5 s: %+v", r.Result)
	}
	if n := f.requests(); n != 0 {
		t.Errorf("plain key: %d registry requests within the TTL", n)
	}
	for _, repo := range []string{"corp/llama", "gated/llama"} {
		r, _ := f.review(t, w, podRequest("ml", pod(repo)), false)
		if r.Allowed {
			t.Errorf("%s: admitted after its evidence lapsed (a cached pass)", repo)
		}
	}
}
