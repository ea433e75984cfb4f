package referrers_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// corpPKI is a root and an intermediate that issue leaves as a test asks.
type corpPKI struct {
	root, inter       *x509.Certificate
	rootKey, interKey *ecdsa.PrivateKey
	rootPEM           []byte
	serial            int64
}

func newCorpPKI(t *testing.T) *corpPKI {
	t.Helper()
	p := &corpPKI{serial: 10}
	p.rootKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p.interKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	ca := func(serial int64, cn string) *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn, Organization: []string{"Acme"}},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	}
	p.root = p.issue(t, ca(1, "Acme Root"), nil, p.rootKey, p.rootKey)
	p.inter = p.issue(t, ca(2, "Acme Signing CA"), p.root, p.interKey, p.rootKey)
	p.rootPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.root.Raw})
	return p
}

func (p *corpPKI) issue(t *testing.T, tmpl, parent *x509.Certificate, key, by *ecdsa.PrivateKey) *x509.Certificate {
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

// leaf issues a code-signing leaf for CN=ml-release,O=Acme under the
// intermediate, edited by edit, and returns a signer carrying the chain.
func (p *corpPKI) leaf(t *testing.T, edit func(*x509.Certificate)) (*referrers.Signer, *x509.Certificate) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p.serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: "ml-release", Organization: []string{"Acme"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}
	if edit != nil {
		edit(tmpl)
	}
	leaf := p.issue(t, tmpl, p.inter, key, p.interKey)
	s, _ := referrers.NewSigner(key)
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.inter.Raw})...)
	s, err := s.WithCertificateChain(chain)
	if err != nil {
		t.Fatal(err)
	}
	return s, leaf
}

// crl is a PEM CRL by issuer listing serials, valid until next.
func crl(t *testing.T, issuer *x509.Certificate, key *ecdsa.PrivateKey, next time.Time, serials ...*big.Int) []byte {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, s := range serials {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: time.Now().Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: next.Add(-24 * time.Hour),
		NextUpdate: next, RevokedCertificateEntries: entries}, issuer, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

var oidCN, oidO = asn1.ObjectIdentifier{2, 5, 4, 3}, asn1.ObjectIdentifier{2, 5, 4, 10}

// TestX509AnchorsSayExactlyWhatTheyMean: the codeSigning EKU is required on
// the leaf (a leaf with none passes only with AllowMissingCodeSigningEKU,
// anyExtendedKeyUsage never); a subject constraint names RFC 4514
// attributes that must occur exactly once and be equal; CRLs refuse a
// revoked leaf or intermediate and fail closed when stale or missing. On
// the old code the "no EKU", "anyExtendedKeyUsage", "two CNs" and every CRL
// refusal verified.
func TestX509AnchorsSayExactlyWhatTheyMean(t *testing.T) {
	p := newCorpPKI(t)
	hour := time.Hour
	type tc struct {
		leaf func(*x509.Certificate)
		c    referrers.X509Constraints
		want string // "" passes
	}
	revokedLeaf := func(c *x509.Certificate) { c.SerialNumber = big.NewInt(666) }
	fresh := time.Now().Add(hour)
	stale := time.Now().Add(-hour)
	rootCRL := crl(t, p.root, p.rootKey, fresh)
	cases := map[string]tc{
		"code-signing leaf":   {nil, referrers.X509Constraints{Subject: "CN=ml-release,O=Acme"}, ""},
		"no EKU":              {func(c *x509.Certificate) { c.ExtKeyUsage = nil }, referrers.X509Constraints{}, "no extended key usage"},
		"no EKU, allowed":     {func(c *x509.Certificate) { c.ExtKeyUsage = nil }, referrers.X509Constraints{AllowMissingCodeSigningEKU: true}, ""},
		"anyExtendedKeyUsage": {func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageAny} }, referrers.X509Constraints{AllowMissingCodeSigningEKU: true}, "does not include codeSigning"},
		"serverAuth only":     {func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} }, referrers.X509Constraints{}, "key usage"},
		"extra OU and C": {func(c *x509.Certificate) {
			c.Subject.OrganizationalUnit = []string{"ML"}
			c.Subject.Country = []string{"DE"}
		}, referrers.X509Constraints{Subject: "CN=ml-release,O=Acme"}, ""},
		"order of the constraint": {nil, referrers.X509Constraints{Subject: "O=Acme,CN=ml-release"}, ""},
		"escaped value":           {func(c *x509.Certificate) { c.Subject.Organization = []string{"Acme, Inc."} }, referrers.X509Constraints{Subject: `CN=ml-release,O=Acme\, Inc.`}, ""},
		"two CNs": {func(c *x509.Certificate) {
			c.Subject = pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{{Type: oidO, Value: "Acme"}, {Type: oidCN, Value: "intern"}, {Type: oidCN, Value: "ml-release"}}}
		}, referrers.X509Constraints{Subject: "CN=ml-release,O=Acme"}, "has CN 2 times"},
		"other O":                    {func(c *x509.Certificate) { c.Subject.Organization = []string{"Acme Evil"} }, referrers.X509Constraints{Subject: "CN=ml-release,O=Acme"}, `has O=Acme Evil, want O=Acme`},
		"no O":                       {func(c *x509.Certificate) { c.Subject.Organization = nil }, referrers.X509Constraints{Subject: "CN=ml-release,O=Acme"}, "has no O"},
		"CN prefix":                  {func(c *x509.Certificate) { c.Subject.CommonName = "ml-release-evil" }, referrers.X509Constraints{Subject: "CN=ml-release"}, "want CN=ml-release"},
		"not revoked":                {nil, referrers.X509Constraints{CRLs: [][]byte{crl(t, p.inter, p.interKey, fresh, big.NewInt(666)), rootCRL}}, ""},
		"revoked leaf":               {revokedLeaf, referrers.X509Constraints{CRLs: [][]byte{crl(t, p.inter, p.interKey, fresh, big.NewInt(666)), rootCRL}}, "leaf certificate \"CN=ml-release,O=Acme\" (serial 666) is revoked"},
		"revoked intermediate":       {nil, referrers.X509Constraints{CRLs: [][]byte{crl(t, p.inter, p.interKey, fresh), crl(t, p.root, p.rootKey, fresh, p.inter.SerialNumber)}}, "intermediate certificate \"CN=Acme Signing CA,O=Acme\" (serial 2) is revoked"},
		"stale CRL":                  {nil, referrers.X509Constraints{CRLs: [][]byte{crl(t, p.inter, p.interKey, stale), rootCRL}}, "past its nextUpdate"},
		"stale CRL, in grace":        {nil, referrers.X509Constraints{CRLs: [][]byte{crl(t, p.inter, p.interKey, stale), rootCRL}, CRLGracePeriod: 2 * hour}, ""},
		"stale CRL, past grace":      {nil, referrers.X509Constraints{CRLs: [][]byte{crl(t, p.inter, p.interKey, stale.Add(-3*hour)), rootCRL}, CRLGracePeriod: 2 * hour}, "and the 2h0m0s grace period"},
		"no CRL of the intermediate": {nil, referrers.X509Constraints{CRLs: [][]byte{rootCRL}}, `no CRL signed by "CN=Acme Signing CA,O=Acme"`},
		"CRL signed by another key":  {revokedLeaf, referrers.X509Constraints{CRLs: [][]byte{crl(t, p.inter, p.rootKey, fresh), rootCRL}}, "no CRL signed by"},
	}
	for name, c := range cases {
		s, _ := p.leaf(t, c.leaf)
		_, subject, bundle := signedModel(t, s)
		v, err := referrers.NewX509Verifier("corp", p.rootPEM, c.c)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_, err = v.Verify(bundle, subject.Digest)
		if c.want == "" && err != nil || c.want != "" && (!errors.Is(err, referrers.ErrVerification) || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: err = %v, want %q", name, err, c.want)
		}
	}
	for name, c := range map[string]referrers.X509Constraints{
		"CN named twice":    {Subject: "CN=ml-release,CN=intern"},
		"not a DN":          {Subject: "ml-release"},
		"unknown attribute": {Subject: "XX=1"},
		"CRL not a CRL":     {CRLs: [][]byte{[]byte("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n")}},
	} {
		if _, err := referrers.NewX509Verifier("corp", p.rootPEM, c); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}

// TestKeylessRegExpMatchesWholeString: an identity regexp is anchored, so
// `ml-release@acme\.example` does not accept a longer identity that merely
// contains it (sigstore-go and cosign match anywhere). On the old code the
// "suffix" and "prefix" cases verified.
func TestKeylessRegExpMatchesWholeString(t *testing.T) {
	ss := regtest.NewSigstore(t)
	for _, tc := range []struct {
		identity, issuerRE, subjectRE string
		ok                            bool
	}{
		{regtest.TestIdentity, `https://oidc\.acme\.example`, `ml-release@acme\.example`, true},
		{"ml-release@acme.example.evil.test", `https://oidc\.acme\.example`, `ml-release@acme\.example`, false},
		{"evil-ml-release@acme.example", `https://oidc\.acme\.example`, `ml-release@acme\.example`, false},
		{regtest.TestIdentity, `oidc\.acme`, `ml-release@acme\.example`, false},
		{regtest.TestIdentity, `https://oidc\.acme\.example`, `ml-release@acme\.example|nobody`, true},
	} {
		s, err := referrers.NewKeylessSigner(context.Background(), referrers.KeylessOptions{FulcioURL: ss.FulcioURL, RekorURL: ss.RekorURL, IDToken: ss.Token(t, tc.identity)})
		if err != nil {
			t.Fatal(err)
		}
		_, subject, bundle := signedModel(t, s)
		v, err := referrers.NewKeylessVerifier("ci", ss.TrustedRootJSON, referrers.KeylessIdentity{IssuerRegExp: tc.issuerRE, SubjectRegExp: tc.subjectRE})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(bundle, subject.Digest); (err == nil) != tc.ok {
			t.Errorf("%s against %s / %s: err = %v, want ok=%v", tc.identity, tc.issuerRE, tc.subjectRE, err, tc.ok)
		}
	}
}

// TestOneKeyIsOneSigner: a key under two anchor names meets a threshold of
// 2 with neither one signature nor two; two x509 anchors sharing a root but
// naming different subjects stay two signers. On the old code "same key
// twice" passed.
func TestOneKeyIsOneSigner(t *testing.T) {
	ctx := context.Background()
	lay, err := oras.OpenLayout(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	subject := model(t, lay)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, _ := referrers.NewSigner(key)
	for range 2 {
		if _, err := referrers.Sign(ctx, lay, subject, s, referrers.AttachOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := referrers.NewKeyVerifier("a", key.Public())
	b, _ := referrers.NewKeyVerifier("b", key.Public())
	two := func(anchors map[string]*referrers.Verifier) *referrers.Policy {
		var names []string
		for n := range anchors {
			names = append(names, n)
		}
		p, err := referrers.CompilePolicy(&referrers.Policy{Version: 1, Models: []referrers.Rule{{Match: []string{"**"},
			Signatures: &referrers.SignatureRule{Signers: names, Threshold: 2}}}}, anchors)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	rep, err := referrers.VerifyModel(ctx, lay, "m", subject, two(map[string]*referrers.Verifier{"a": a, "b": b}), referrers.VerifyOptions{})
	if err == nil || rep.Passed || !strings.Contains(err.Error(), "1 of 2 required distinct signers") || !strings.Contains(err.Error(), "one key counts as one signer") {
		t.Fatalf("same key twice: err = %v", err)
	}

	// Two subjects under one root: two signers.
	p := newCorpPKI(t)
	release, _ := p.leaf(t, nil)
	qa, _ := p.leaf(t, func(c *x509.Certificate) { c.Subject.CommonName = "ml-qa" })
	for _, s := range []*referrers.Signer{release, qa} {
		if _, err := referrers.Sign(ctx, lay, subject, s, referrers.AttachOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	cr, _ := referrers.NewX509Verifier("corp-release", p.rootPEM, referrers.X509Constraints{Subject: "CN=ml-release"})
	cq, _ := referrers.NewX509Verifier("corp-qa", p.rootPEM, referrers.X509Constraints{Subject: "CN=ml-qa"})
	if rep, err := referrers.VerifyModel(ctx, lay, "m", subject, two(map[string]*referrers.Verifier{"corp-release": cr, "corp-qa": cq}), referrers.VerifyOptions{}); err != nil {
		t.Fatalf("two subjects under one root: %v\n%+v", err, rep)
	}
	// One certificate that both anchors accept is one signer.
	any1, _ := referrers.NewX509Verifier("corp-1", p.rootPEM, referrers.X509Constraints{Subject: "O=Acme"})
	any2, _ := referrers.NewX509Verifier("corp-2", p.rootPEM, referrers.X509Constraints{Subject: "O=Acme"})
	lay2, _ := oras.OpenLayout(t.TempDir())
	m2 := model(t, lay2)
	referrers.Sign(ctx, lay2, m2, release, referrers.AttachOptions{})
	if _, err := referrers.VerifyModel(ctx, lay2, "m", m2, two(map[string]*referrers.Verifier{"corp-1": any1, "corp-2": any2}), referrers.VerifyOptions{}); err == nil {
		t.Fatal("one certificate met two anchors")
	}
}
