package integration

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	orasgo "oras.land/oras-go/v2"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/referrers"
)

// caPKI is a root and two intermediates able to sign CRLs; the second
// intermediate is the one a CRL of the root revokes.
type caPKI struct {
	root, inter, revokedInter          *x509.Certificate
	rootKey, interKey, revokedInterKey *ecdsa.PrivateKey
	serial                             int64
}

func newCAPKI(t *testing.T) *caPKI {
	t.Helper()
	p := &caPKI{serial: 100}
	ca := func(serial int64, cn string) *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn, Organization: []string{"Acme"}},
			NotBefore: time.Now().Add(-72 * time.Hour), NotAfter: time.Now().Add(72 * time.Hour), IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	}
	p.rootKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p.interKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p.revokedInterKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p.root = issueCert(t, ca(1, "Acme Root 2"), nil, p.rootKey, p.rootKey)
	p.inter = issueCert(t, ca(2, "Acme Signing CA"), p.root, p.interKey, p.rootKey)
	p.revokedInter = issueCert(t, ca(77, "Acme Old Signing CA"), p.root, p.revokedInterKey, p.rootKey)
	return p
}

func issueCert(t *testing.T, tmpl, parent *x509.Certificate, key, by *ecdsa.PrivateKey) *x509.Certificate {
	t.Helper()
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), by)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func pemCert(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// leaf issues a code-signing leaf CN=ml-release,O=Acme under inter (or the
// revoked intermediate), edited by edit, and returns its signer.
func (p *caPKI) leaf(t *testing.T, underRevoked bool, edit func(*x509.Certificate)) *referrers.Signer {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p.serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: "ml-release", Organization: []string{"Acme"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}
	if edit != nil {
		edit(tmpl)
	}
	issuer, issuerKey := p.inter, p.interKey
	if underRevoked {
		issuer, issuerKey = p.revokedInter, p.revokedInterKey
	}
	leaf := issueCert(t, tmpl, issuer, key, issuerKey)
	s, _ := referrers.NewSigner(key)
	s, err := s.WithCertificateChain(pemCert(leaf, issuer))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// writeCRL writes a PEM CRL of issuer revoking serials, valid until next.
func writeCRL(t *testing.T, file string, issuer *x509.Certificate, key *ecdsa.PrivateKey, next time.Time, serials ...int64) {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, s := range serials {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: big.NewInt(s), RevocationTime: time.Now().Add(-time.Hour)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: next.Add(-48 * time.Hour),
		NextUpdate: next, RevokedCertificateEntries: entries}, issuer, key)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), 0o644)
}

// legacySign stores a cosign v2 simple-signing signature of desc under its
// sha256-<hex>.sig tag, signed with key.
func (w *world) legacySign(tgt orasgo.Target, desc ocispec.Descriptor, key *ecdsa.PrivateKey) {
	w.t.Helper()
	payload, _ := json.Marshal(map[string]any{"critical": map[string]any{
		"identity": map[string]string{"docker-reference": w.host},
		"image":    map[string]string{"docker-manifest-digest": desc.Digest.String()},
		"type":     "cosign container image signature"}, "optional": nil})
	h := sha256.Sum256(payload)
	sig, err := ecdsa.SignASN1(rand.Reader, key, h[:])
	if err != nil {
		w.t.Fatal(err)
	}
	layer := ocispec.Descriptor{MediaType: "application/vnd.dev.cosign.simplesigning.v1+json", Digest: digest.FromBytes(payload), Size: int64(len(payload)),
		Annotations: map[string]string{"dev.cosignproject.cosign/signature": base64.StdEncoding.EncodeToString(sig)}}
	if err := tgt.Push(w.ctx, layer, bytes.NewReader(payload)); err != nil {
		w.t.Fatal(err)
	}
	m, err := orasgo.PackManifest(w.ctx, tgt, orasgo.PackManifestVersion1_0, "application/vnd.oci.image.config.v1+json",
		orasgo.PackManifestOptions{Layers: []ocispec.Descriptor{layer}})
	if err != nil {
		w.t.Fatal(err)
	}
	if err := tgt.Tag(w.ctx, m, referrers.LegacySignatureTag(desc.Digest)); err != nil {
		w.t.Fatal(err)
	}
}

// TestTamperAnchors runs the trust-anchor cases on the embedded registry.
func TestTamperAnchors(t *testing.T) { tamperAnchors(t, newWorld(t, false)) }

// TestTamperAnchorsTagSchema runs them on distribution (tag schema).
func TestTamperAnchorsTagSchema(t *testing.T) { tamperAnchors(t, newWorld(t, true)) }

// tamperAnchors: x509 anchors require codeSigning, match subject
// attributes exactly once, honour CRLs; keyless regexps match the whole
// identity; one key counts as one signer whatever it is called.
func tamperAnchors(t *testing.T, w *world) {
	pki := newCAPKI(t)
	os.WriteFile(filepath.Join(w.dir, "corp2-root.pem"), pemCert(pki.root), 0o644)
	fresh, stale := time.Now().Add(24*time.Hour), time.Now().Add(-time.Hour)
	writeCRL(t, filepath.Join(w.dir, "inter.crl"), pki.inter, pki.interKey, fresh, 666)
	writeCRL(t, filepath.Join(w.dir, "old-inter.crl"), pki.revokedInter, pki.revokedInterKey, fresh)
	writeCRL(t, filepath.Join(w.dir, "root.crl"), pki.root, pki.rootKey, fresh, 77)
	writeCRL(t, filepath.Join(w.dir, "inter-stale.crl"), pki.inter, pki.interKey, stale)
	_, twinKey := keyFiles(t, w.dir, "twin")
	twin, _ := referrers.NewSigner(twinKey)
	a := w.withPolicy("anchors.yaml", fmt.Sprintf(`version: 1
trust:
  twin: {key: twin.pub}
  twin-again: {key: twin.pub}
  qa: {key: qa.pub}
  corp: {x509: {roots: corp2-root.pem, subject: "CN=ml-release,O=Acme"}}
  corp-old: {x509: {roots: corp2-root.pem, subject: "CN=ml-release,O=Acme", allowMissingCodeSigningEKU: true}}
  corp-crl: {x509: {roots: corp2-root.pem, crls: [inter.crl, old-inter.crl, root.crl]}}
  corp-stale: {x509: {roots: corp2-root.pem, crls: [inter-stale.crl, root.crl]}}
  corp-grace: {x509: {roots: corp2-root.pem, crls: [inter-stale.crl, root.crl], crlGracePeriod: 48h}}
  ci-re:
    keyless: {issuerRegExp: 'https://oidc\.acme\.example', subjectRegExp: 'ml-release@acme\.example', trustedRoot: trusted_root.json}
models:
  - match: ["%[1]s/twin/**"]
    signatures: {signers: [twin, twin-again, qa], threshold: 2}
  - match: ["%[1]s/corp/**"]
    signatures: {signers: [corp]}
  - match: ["%[1]s/corp-old/**"]
    signatures: {signers: [corp-old]}
  - match: ["%[1]s/crl/**"]
    signatures: {signers: [corp-crl]}
  - match: ["%[1]s/crl-stale/**"]
    signatures: {signers: [corp-stale]}
  - match: ["%[1]s/crl-grace/**"]
    signatures: {signers: [corp-grace]}
  - match: ["%[1]s/keyless-re/**"]
    signatures: {signers: [ci-re]}
  - match: ["**"]
    reject: true
`, w.host))
	signed := func(repo string, signers ...*referrers.Signer) string {
		tgt, desc, ref := w.model(repo)
		for _, s := range signers {
			w.sign(tgt, desc, s)
		}
		return ref
	}

	t.Run("control: two keys meet a threshold of 2", func(t *testing.T) {
		a.passes(t, signed("twin/control", twin, w.qa))
	})
	t.Run("one key under two anchor names", func(t *testing.T) {
		a.refused(t, signed("twin/once", twin), "signatures: 1 of 2 required distinct signers")
	})
	t.Run("one key under two anchor names, signed twice", func(t *testing.T) {
		a.refused(t, signed("twin/twice", twin, twin), "one key counts as one signer")
	})
	t.Run("one key under two anchor names, a bundle and a legacy .sig", func(t *testing.T) {
		tgt, desc, ref := w.model("twin/legacy")
		w.sign(tgt, desc, twin)
		w.legacySign(tgt, desc, twinKey)
		a.refused(t, ref, "one key counts as one signer")
	})

	t.Run("control: code-signing leaf with the subject passes", func(t *testing.T) {
		a.passes(t, signed("corp/control", pki.leaf(t, false, nil)))
	})
	t.Run("leaf without extended key usage", func(t *testing.T) {
		a.refused(t, signed("corp/noeku", pki.leaf(t, false, func(c *x509.Certificate) { c.ExtKeyUsage = nil })), "no extended key usage")
	})
	t.Run("control: leaf without EKU under allowMissingCodeSigningEKU passes", func(t *testing.T) {
		a.passes(t, signed("corp-old/noeku", pki.leaf(t, false, func(c *x509.Certificate) { c.ExtKeyUsage = nil })))
	})
	t.Run("leaf with anyExtendedKeyUsage", func(t *testing.T) {
		a.refused(t, signed("corp-old/anyeku", pki.leaf(t, false, func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageAny} })),
			"does not include codeSigning")
	})
	t.Run("subject with a second CN", func(t *testing.T) {
		cn, o := asn1.ObjectIdentifier{2, 5, 4, 3}, asn1.ObjectIdentifier{2, 5, 4, 10}
		s := pki.leaf(t, false, func(c *x509.Certificate) {
			c.Subject = pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{{Type: o, Value: "Acme"}, {Type: cn, Value: "intern"}, {Type: cn, Value: "ml-release"}}}
		})
		a.refused(t, signed("corp/twocn", s), "has CN 2 times")
	})

	t.Run("control: leaf covered by current CRLs passes", func(t *testing.T) {
		a.passes(t, signed("crl/control", pki.leaf(t, false, nil)))
	})
	t.Run("revoked leaf", func(t *testing.T) {
		s := pki.leaf(t, false, func(c *x509.Certificate) { c.SerialNumber = big.NewInt(666) })
		a.refused(t, signed("crl/leaf", s), "(serial 666) is revoked")
	})
	t.Run("revoked intermediate", func(t *testing.T) {
		a.refused(t, signed("crl/inter", pki.leaf(t, true, nil)), `intermediate certificate "CN=Acme Old Signing CA,O=Acme" (serial 77) is revoked`)
	})
	t.Run("CRL past its nextUpdate", func(t *testing.T) {
		a.refused(t, signed("crl-stale/leaf", pki.leaf(t, false, nil)), "past its nextUpdate")
	})
	t.Run("control: stale CRL within the grace period passes", func(t *testing.T) {
		a.passes(t, signed("crl-grace/leaf", pki.leaf(t, false, nil)))
	})

	keyless := func(t *testing.T, identity string) *referrers.Signer {
		s, err := referrers.NewKeylessSigner(w.ctx, referrers.KeylessOptions{FulcioURL: w.sig.FulcioURL, RekorURL: w.sig.RekorURL,
			IDToken: w.sig.Token(t, identity)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	t.Run("control: keyless identity matching the whole regexp passes", func(t *testing.T) {
		a.passes(t, signed("keyless-re/control", keyless(t, regtest.TestIdentity)))
	})
	t.Run("keyless identity with the regexp's text as a prefix", func(t *testing.T) {
		a.refused(t, signed("keyless-re/suffix", keyless(t, "ml-release@acme.example.evil.test")), "ml-release@acme.example.evil.test")
	})
}
