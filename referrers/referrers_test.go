package referrers_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

var created = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// model pushes a small model to tgt and returns its descriptor.
func model(t *testing.T, tgt *oras.Target) ocispec.Descriptor {
	t.Helper()
	desc, err := oras.Push(context.Background(), tgt, "v1", regtest.ModelDir(t, 4096), oras.PushOptions{Created: created})
	if err != nil {
		t.Fatal(err)
	}
	return desc
}

// signedModel pushes a model to a new OCI layout, signs it with s and
// returns the layout, the model and the bundle read back from the referrer.
func signedModel(t *testing.T, s *referrers.Signer) (*oras.Target, ocispec.Descriptor, []byte) {
	t.Helper()
	ctx := context.Background()
	tgt, err := oras.OpenLayout(filepath.Join(t.TempDir(), "layout"))
	if err != nil {
		t.Fatal(err)
	}
	subject := model(t, tgt)
	desc, err := referrers.Sign(ctx, tgt, subject, s, referrers.AttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := referrers.FetchReferrer(ctx, tgt, desc, subject.Digest)
	if err != nil {
		t.Fatal(err)
	}
	return tgt, subject, ref.Bundle
}

// targets are the three kinds of store a referrer must work on.
func targets(t *testing.T) map[string]func(t *testing.T) *oras.Target {
	return map[string]func(t *testing.T) *oras.Target{
		"referrers API": func(t *testing.T) *oras.Target {
			tgt, err := oras.OpenRemote(context.Background(), regtest.Embedded(t, "")+"/models/tiny", oras.RemoteOptions{PlainHTTP: true})
			if err != nil {
				t.Fatal(err)
			}
			return tgt
		},
		"tag schema": func(t *testing.T) *oras.Target {
			tgt, err := oras.OpenRemote(context.Background(), regtest.Embedded(t, "")+"/models/tiny",
				oras.RemoteOptions{PlainHTTP: true, DistributionSpec: oras.ReferrersTag})
			if err != nil {
				t.Fatal(err)
			}
			return tgt
		},
		"oci layout": func(t *testing.T) *oras.Target {
			tgt, err := oras.OpenLayout(filepath.Join(t.TempDir(), "layout"))
			if err != nil {
				t.Fatal(err)
			}
			return tgt
		},
	}
}

type keyCase struct {
	name string
	priv crypto.Signer
}

func keys(t *testing.T) []keyCase {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	return []keyCase{{"ECDSA P-256", p256}, {"ECDSA P-384", p384}, {"Ed25519", ed}}
}

func TestSignAndVerifyOnEveryTarget(t *testing.T) {
	ctx := context.Background()
	for tname, open := range targets(t) {
		t.Run(tname, func(t *testing.T) {
			tgt := open(t)
			subject := model(t, tgt)
			for _, k := range keys(t) {
				t.Run(k.name, func(t *testing.T) {
					s, err := referrers.NewSigner(k.priv)
					if err != nil {
						t.Fatal(err)
					}
					desc, err := referrers.Sign(ctx, tgt, subject, s, referrers.AttachOptions{Created: created})
					if err != nil {
						t.Fatal(err)
					}
					ref, err := referrers.FetchReferrer(ctx, tgt, desc, subject.Digest)
					if err != nil {
						t.Fatal(err)
					}
					m := ref.Manifest
					if m.ArtifactType != referrers.BundleMediaType || m.Config.MediaType != referrers.EmptyConfigMediaType ||
						m.Annotations[referrers.AnnotationBundleContent] != "dsse-envelope" ||
						m.Annotations[referrers.AnnotationPredicateType] != referrers.PredicateCosignSign ||
						m.Annotations[referrers.AnnotationCreated] != "2026-11-01T00:00:00Z" {
						t.Fatalf("referrer manifest not in cosign's layout: %+v", m)
					}
					v, err := referrers.NewKeyVerifier("test", k.priv.Public())
					if err != nil {
						t.Fatal(err)
					}
					st, err := v.Verify(ref.Bundle, subject.Digest)
					if err != nil {
						t.Fatal(err)
					}
					if st.Type != referrers.StatementV1 || st.PredicateType != referrers.PredicateCosignSign {
						t.Fatalf("statement %+v", st)
					}
					// Another key, or another subject, fails.
					other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
					ov, _ := referrers.NewKeyVerifier("other", other.Public())
					if _, err := ov.Verify(ref.Bundle, subject.Digest); !errors.Is(err, referrers.ErrVerification) {
						t.Fatalf("another key: err = %v", err)
					}
					if _, err := v.Verify(ref.Bundle, digest.Digest("sha256:"+strings.Repeat("0", 64))); !errors.Is(err, referrers.ErrVerification) {
						t.Fatalf("another subject: err = %v", err)
					}
				})
			}
		})
	}
}

func TestSignatureDoesNotFetchBlobs(t *testing.T) {
	ctx := context.Background()
	proxy := regtest.NewProxy(t, regtest.Embedded(t, ""))
	tgt, _ := oras.OpenRemote(ctx, proxy.Host+"/models/tiny", oras.RemoteOptions{PlainHTTP: true})
	subject := model(t, tgt)
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, _ := referrers.NewSigner(priv)
	proxy.Reset()
	if _, err := referrers.Sign(ctx, tgt, subject, s, referrers.AttachOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := proxy.Count("GET", "/v2/models/tiny/blobs/"); n != 0 {
		t.Fatalf("signing fetched %d blobs", n)
	}
}

func writePEM(t *testing.T, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadSigner(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	keyPath, pubPath, err := referrers.GenerateKeyPair(filepath.Join(dir, "cosign"), []byte("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := referrers.GenerateKeyPair(filepath.Join(dir, "cosign"), nil); err == nil {
		t.Fatal("keygen overwrote an existing key")
	}
	pass := func(p string) referrers.PasswordFunc { return func() ([]byte, error) { return []byte(p), nil } }

	s, err := referrers.LoadSigner(ctx, keyPath, pass("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	_, subject, bundle := signedModel(t, s)
	v, err := referrers.LoadKeyVerifier(ctx, "cosign.pub", pubPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(bundle, subject.Digest); err != nil {
		t.Fatal(err)
	}

	// A key cosign generate-key-pair made (empty password) loads too, and
	// its signatures verify against the cosign.pub it wrote.
	cs, err := referrers.LoadSigner(ctx, "testdata/cosign/cosign.key", pass(""))
	if err != nil {
		t.Fatalf("cosign-made key: %v", err)
	}
	_, subject, bundle = signedModel(t, cs)
	if v, err = referrers.LoadKeyVerifier(ctx, "cosign.pub", "testdata/cosign/cosign.pub"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(bundle, subject.Digest); err != nil {
		t.Fatalf("cosign-made key: %v", err)
	}

	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(p384)
	sec1, _ := x509.MarshalECPrivateKey(p384)
	pub, _ := x509.MarshalPKIXPublicKey(p384.Public())
	for name, path := range map[string]string{"PKCS#8": writePEM(t, "PRIVATE KEY", pkcs8), "SEC 1": writePEM(t, "EC PRIVATE KEY", sec1)} {
		if _, err := referrers.LoadSigner(ctx, path, nil); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}

	bad := map[string]struct {
		path string
		pass referrers.PasswordFunc
		want string
	}{
		"wrong password":   {keyPath, pass("nope"), "wrong password"},
		"missing file":     {filepath.Join(dir, "missing.key"), nil, "no such file"},
		"not PEM":          {pubPath + ".txt", nil, "not a PEM file"},
		"public key":       {writePEM(t, "PUBLIC KEY", pub), nil, "cannot sign"},
		"encrypted PKCS#8": {writePEM(t, "ENCRYPTED PRIVATE KEY", []byte("x")), nil, "not supported"},
		"garbage":          {writePEM(t, "PRIVATE KEY", []byte("garbage")), nil, ""},
	}
	os.WriteFile(pubPath+".txt", []byte("not a key"), 0o600)
	for name, tt := range bad {
		_, err := referrers.LoadSigner(ctx, tt.path, tt.pass)
		if !errors.Is(err, referrers.ErrKey) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want ErrKey mentioning %q", name, err, tt.want)
		}
	}
}

func TestAttestProvenance(t *testing.T) {
	ctx := context.Background()
	tgt, _ := oras.OpenLayout(filepath.Join(t.TempDir(), "layout"))
	subject := model(t, tgt)
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, _ := referrers.NewSigner(priv)
	dataset, err := referrers.ParseDependency("uri=s3://acme-datasets/approved/wiki-2026,digest=sha256:" + strings.Repeat("ab", 32) + ",name=train")
	if err != nil {
		t.Fatal(err)
	}
	pred, err := referrers.Provenance{
		BuilderID: "https://ci.acme.example/trainer@v2", BuildType: "https://acme.example/ml-train/v1",
		ExternalParameters: map[string]any{"repo": "https://git.acme.example/ml/train", "ref": "refs/heads/main"},
		Dependencies:       []referrers.Dependency{dataset, {URI: "oci://harbor.acme.example/base/llama", Digest: map[string]string{"sha256": strings.Repeat("cd", 32)}}},
		InvocationID:       "run-42",
	}.Predicate()
	if err != nil {
		t.Fatal(err)
	}
	desc, err := referrers.Attest(ctx, tgt, subject, s, "slsaprovenance1", pred, referrers.AttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := referrers.FetchReferrer(ctx, tgt, desc, subject.Digest)
	v, _ := referrers.NewKeyVerifier("k", priv.Public())
	st, err := v.Verify(ref.Bundle, subject.Digest)
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		BuildDefinition struct {
			ResolvedDependencies []referrers.Dependency `json:"resolvedDependencies"`
		} `json:"buildDefinition"`
		RunDetails struct {
			Builder struct{ ID string } `json:"builder"`
		} `json:"runDetails"`
	}
	json.Unmarshal(st.Predicate, &p)
	if st.PredicateType != referrers.PredicateSLSAProvenance || p.RunDetails.Builder.ID != "https://ci.acme.example/trainer@v2" ||
		len(p.BuildDefinition.ResolvedDependencies) != 2 || p.BuildDefinition.ResolvedDependencies[0].Name != "train" {
		t.Fatalf("statement %s %s", st.PredicateType, st.Predicate)
	}
}

func TestProvenanceIsValidatedBeforeAnythingIsPushed(t *testing.T) {
	ctx := context.Background()
	proxy := regtest.NewProxy(t, regtest.Embedded(t, ""))
	tgt, _ := oras.OpenRemote(ctx, proxy.Host+"/models/tiny", oras.RemoteOptions{PlainHTTP: true})
	subject := model(t, tgt)
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, _ := referrers.NewSigner(priv)
	good := `{"buildDefinition":{"buildType":"t","externalParameters":{"a":1}},"runDetails":{"builder":{"id":"b"}}}`
	bad := map[string]string{
		"no builder id":    strings.Replace(good, `"id":"b"`, `"id":""`, 1),
		"no build type":    strings.Replace(good, `"buildType":"t"`, `"buildType":""`, 1),
		"no external":      strings.Replace(good, `"externalParameters":{"a":1}`, `"externalParameters":{}`, 1),
		"no run details":   `{"buildDefinition":{"buildType":"t","externalParameters":{"a":1}}}`,
		"unknown field":    strings.Replace(good, `"runDetails"`, `"runDetail":{},"runDetails"`, 1),
		"short digest":     strings.Replace(good, `"externalParameters":{"a":1}`, `"externalParameters":{"a":1},"resolvedDependencies":[{"uri":"s3://d","digest":{"sha256":"abc"}}]`, 1),
		"uppercase digest": strings.Replace(good, `"externalParameters":{"a":1}`, `"externalParameters":{"a":1},"resolvedDependencies":[{"uri":"s3://d","digest":{"sha256":"`+strings.Repeat("AB", 32)+`"}}]`, 1),
		"not JSON":         `{"buildDefinition":`,
		"not an object":    `[1,2]`,
	}
	proxy.Reset()
	for name, p := range bad {
		_, err := referrers.Attest(ctx, tgt, subject, s, referrers.PredicateSLSAProvenance, json.RawMessage(p), referrers.AttachOptions{})
		if !errors.Is(err, referrers.ErrPredicate) {
			t.Errorf("%s: err = %v, want ErrPredicate", name, err)
		}
	}
	if n := proxy.Count("PUT", "/v2/") + proxy.Count("POST", "/v2/"); n != 0 {
		t.Fatalf("%d writes for refused predicates", n)
	}
	if _, err := referrers.Attest(ctx, tgt, subject, s, referrers.PredicateSLSAProvenance, json.RawMessage(good), referrers.AttachOptions{}); err != nil {
		t.Fatalf("good predicate: %v", err)
	}
	for _, bad := range []string{"uri=s3://x,digest=sha256", "digest=sha256:xyz", "name=only", "uri=s3://x,colour=red"} {
		if _, err := referrers.ParseDependency(bad); err == nil {
			t.Errorf("ParseDependency(%q): no error", bad)
		}
	}
}

// testPKI makes a root, an intermediate and a code-signing leaf for key.
func testPKI(t *testing.T, leafKey crypto.Signer, subject string) (rootPEM, chainPEM []byte) {
	t.Helper()
	mk := func(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c
	}
	now := time.Now()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rootT := &x509.Certificate{SerialNumber: bigOne(1), Subject: pkixName("Acme Root"), NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	root := mk(rootT, rootT, rootKey.Public(), rootKey)
	interKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	interT := &x509.Certificate{SerialNumber: bigOne(2), Subject: pkixName("Acme Signing CA"), NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	inter := mk(interT, root, interKey.Public(), rootKey)
	leafT := &x509.Certificate{SerialNumber: bigOne(3), Subject: pkixName(subject), NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		EmailAddresses: []string{"ml-release@acme.example"}}
	leaf := mk(leafT, inter, leafKey.Public(), interKey)
	enc := func(cs ...*x509.Certificate) []byte {
		var out []byte
		for _, c := range cs {
			out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
		return out
	}
	return enc(root), enc(leaf, inter, root)
}

func TestX509SignAndVerify(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rootPEM, chainPEM := testPKI(t, key, "ml-release")
	s, _ := referrers.NewSigner(key)
	s, err := s.WithCertificateChain(chainPEM)
	if err != nil {
		t.Fatal(err)
	}
	_, subject, bundle := signedModel(t, s)
	ok := map[string]referrers.X509Constraints{
		"any":     {},
		"subject": {Subject: "CN=ml-release,O=Acme"},
		"san":     {SANs: []string{"ml-release@acme.example"}},
	}
	for name, c := range ok {
		v, _ := referrers.NewX509Verifier("corp", rootPEM, c)
		if _, err := v.Verify(bundle, subject.Digest); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	otherRoot, _ := testPKI(t, key, "ml-release")
	bad := map[string]struct {
		roots []byte
		c     referrers.X509Constraints
	}{
		"other root":    {otherRoot, referrers.X509Constraints{}},
		"other subject": {rootPEM, referrers.X509Constraints{Subject: "CN=intern,O=Acme"}},
		"other san":     {rootPEM, referrers.X509Constraints{SANs: []string{"ceo@acme.example"}}},
	}
	for name, tt := range bad {
		v, _ := referrers.NewX509Verifier("corp", tt.roots, tt.c)
		if _, err := v.Verify(bundle, subject.Digest); !errors.Is(err, referrers.ErrVerification) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	// A chain for another key is refused at load time.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	so, _ := referrers.NewSigner(other)
	if _, err := so.WithCertificateChain(chainPEM); err == nil {
		t.Error("a certificate for another key was accepted")
	}
}

func bigOne(n int64) *big.Int { return big.NewInt(n) }

func pkixName(cn string) pkix.Name { return pkix.Name{CommonName: cn, Organization: []string{"Acme"}} }
