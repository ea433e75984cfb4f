package referrers_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"testing"
	"time"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// TestReportValidUntil: the report says when the earliest certificate (or
// CRL) that a counted signature rested on lapses — an X.509 PKI leaf, a
// CRL's nextUpdate plus grace, a Notary Project chain or the nextUpdate of
// its CRL file, a Fulcio leaf still valid — and nothing for a plain key.
// A signature that verified but was not counted does not shorten it.
func TestReportValidUntil(t *testing.T) {
	ctx := context.Background()
	sec := func(d time.Duration) time.Time { return time.Now().Add(d).Truncate(time.Second).UTC() }
	leafEnd, crlEnd := sec(40*time.Minute), sec(20*time.Minute) // the corp root and intermediate last an hour
	grace := 10 * time.Minute

	p := newCorpPKI(t)
	corp, _ := p.leaf(t, func(c *x509.Certificate) { c.NotAfter = leafEnd })
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	plain, _ := referrers.NewSigner(key)
	ss := regtest.NewSigstore(t)
	keyless, err := referrers.NewKeylessSigner(ctx, referrers.KeylessOptions{FulcioURL: ss.FulcioURL, RekorURL: ss.RekorURL, IDToken: ss.Token(t, regtest.TestIdentity)})
	if err != nil {
		t.Fatal(err)
	}
	nca := regtest.NewNotaryCA(t, "Acme Root")
	notaryLeafEnd := sec(45 * time.Minute)
	nleaf := nca.Leaf(t, releaseName, time.Now().Add(-time.Hour), notaryLeafEnd, "")
	notary, err := referrers.NewNotationSigner(nleaf.Key, nleaf.Chain)
	if err != nil {
		t.Fatal(err)
	}

	keyV, _ := referrers.NewKeyVerifier("key", key.Public())
	corpV, _ := referrers.NewX509Verifier("corp", p.rootPEM, referrers.X509Constraints{})
	corpCRL, _ := referrers.NewX509Verifier("corp-crl", p.rootPEM, referrers.X509Constraints{
		CRLs: [][]byte{crl(t, p.inter, p.interKey, crlEnd.Add(-grace)), crl(t, p.root, p.rootKey, sec(24*time.Hour))}, CRLGracePeriod: grace})
	keylessV, _ := referrers.NewKeylessVerifier("ci", ss.TrustedRootJSON, referrers.KeylessIdentity{Issuer: regtest.TestIssuer, Subject: regtest.TestIdentity})
	notaryV, err := referrers.NewNotationVerifier("notary", referrers.NotationTrust{CA: []*x509.Certificate{nca.Cert}, TrustedIdentities: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	verifiers := map[string]*referrers.Verifier{"key": keyV, "corp": corpV, "corp-crl": corpCRL, "ci": keylessV, "notary": notaryV}

	lay, err := oras.OpenLayout(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := model(t, lay)
	for _, s := range []*referrers.Signer{plain, corp, keyless} {
		if _, err := referrers.Sign(ctx, lay, m, s, referrers.AttachOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := referrers.SignNotation(ctx, lay, m, notary, referrers.NotationSignOptions{}); err != nil {
		t.Fatal(err)
	}
	verifyWith := func(signers ...string) *referrers.Report {
		t.Helper()
		pol, err := referrers.CompilePolicy(&referrers.Policy{Version: 1, Models: []referrers.Rule{{Match: []string{"**"},
			Signatures: &referrers.SignatureRule{Signers: signers, Threshold: len(signers)}}}}, verifiers)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := referrers.VerifyModel(ctx, lay, "m", m, pol, referrers.VerifyOptions{})
		if err != nil {
			t.Fatalf("%v: %v", signers, err)
		}
		return rep
	}

	if rep := verifyWith("key"); !rep.ValidUntil.IsZero() {
		t.Errorf("plain key: ValidUntil %s, want none", rep.ValidUntil)
	}
	if rep := verifyWith("corp"); !rep.ValidUntil.Equal(leafEnd) {
		t.Errorf("X.509 leaf: ValidUntil %s, want the leaf's NotAfter %s", rep.ValidUntil, leafEnd)
	}
	if rep := verifyWith("corp-crl"); !rep.ValidUntil.Equal(crlEnd) {
		t.Errorf("X.509 with CRLs: ValidUntil %s, want the intermediate's CRL nextUpdate plus grace %s", rep.ValidUntil, crlEnd)
	}
	if rep := verifyWith("notary"); !rep.ValidUntil.Equal(notaryLeafEnd) {
		t.Errorf("Notary Project chain: ValidUntil %s, want the leaf's NotAfter %s", rep.ValidUntil, notaryLeafEnd)
	}
	// A Notary Project chain checked against a CRL file: until its
	// nextUpdate when that comes first.
	lay2, err := oras.OpenLayout(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m2 := model(t, lay2)
	long := nca.Leaf(t, releaseName, time.Now().Add(-time.Hour), time.Now().Add(72*time.Hour), "")
	longSigner, err := referrers.NewNotationSigner(long.Key, long.Chain)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := referrers.SignNotation(ctx, lay2, m2, longSigner, referrers.NotationSignOptions{}); err != nil {
		t.Fatal(err)
	}
	crlFile, err := x509.ParseRevocationList(nca.CRL(t))
	if err != nil {
		t.Fatal(err)
	}
	notaryCRL, err := referrers.NewNotationVerifier("notary-crl", referrers.NotationTrust{CA: []*x509.Certificate{nca.Cert}, TrustedIdentities: []string{"*"},
		CRLs: []*x509.RevocationList{crlFile}})
	if err != nil {
		t.Fatal(err)
	}
	pol, err := referrers.CompilePolicy(&referrers.Policy{Version: 1, Models: []referrers.Rule{{Match: []string{"**"},
		Signatures: &referrers.SignatureRule{Signers: []string{"notary-crl"}, Threshold: 1}}}}, map[string]*referrers.Verifier{"notary-crl": notaryCRL})
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := referrers.VerifyModel(ctx, lay2, "m", m2, pol, referrers.VerifyOptions{}); err != nil || !rep.ValidUntil.Equal(crlFile.NextUpdate.UTC()) {
		t.Errorf("Notary Project chain under a CRL: ValidUntil %v (%v), want the CRL's nextUpdate %s", rep.ValidUntil, err, crlFile.NextUpdate)
	}

	rep := verifyWith("ci")
	if rep.ValidUntil.IsZero() || !rep.ValidUntil.After(time.Now()) || rep.ValidUntil.After(time.Now().Add(24*time.Hour)) {
		t.Errorf("Fulcio leaf still valid: ValidUntil %s, want its NotAfter", rep.ValidUntil)
	}
	// Only what the rule counted: the key's rule is not shortened by the
	// certificates of the other signatures on the same model.
	if rep := verifyWith("key", "corp"); !rep.ValidUntil.Equal(leafEnd) {
		t.Errorf("key and X.509: ValidUntil %s, want %s", rep.ValidUntil, leafEnd)
	}
}
