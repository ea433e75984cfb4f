package referrers_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/referrers"
)

// TestAnchorExpiries: what a compiled policy's anchors list as expiring —
// an x509 anchor's root and intermediate (not its leaf) and its CRL's
// nextUpdate, a keyless anchor's trusted root CA and log validFor ends (an
// open end is not listed), nothing for a key anchor.
func TestAnchorExpiries(t *testing.T) {
	day := 24 * time.Hour
	now := time.Now().Truncate(time.Second)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	issue := func(cn string, parent *x509.Certificate, ca bool, notAfter time.Time) *x509.Certificate {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(len(cn))), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-day), NotAfter: notAfter, IsCA: ca, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature}
		if parent == nil {
			parent = tmpl
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), key)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c
	}
	rootCert := issue("Root", nil, true, now.Add(300*day))
	inter := issue("Inter", rootCert, true, now.Add(20*day))
	leaf := issue("Leaf", inter, false, now.Add(day))
	var roots []byte
	for _, c := range []*x509.Certificate{rootCert, inter, leaf} {
		roots = append(roots, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(7), ThisUpdate: now.Add(-day), NextUpdate: now.Add(5 * day)}, inter, key)
	if err != nil {
		t.Fatal(err)
	}
	corp, err := referrers.NewX509Verifier("corp", roots, referrers.X509Constraints{CRLs: [][]byte{crl}})
	if err != nil {
		t.Fatal(err)
	}

	// A real trusted_root.json with an end given to its CA and its log.
	ss := regtest.NewSigstore(t)
	var tr map[string]any
	if err := json.Unmarshal(ss.TrustedRootJSON, &tr); err != nil {
		t.Fatal(err)
	}
	caEnd, logEnd := now.Add(40*day).UTC(), now.Add(60*day).UTC()
	setEnd := func(list string, at time.Time, path ...string) {
		for _, e := range tr[list].([]any) {
			m := e.(map[string]any)
			for _, k := range path {
				m = m[k].(map[string]any)
			}
			m["end"] = at.Format(time.RFC3339)
		}
	}
	setEnd("certificateAuthorities", caEnd, "validFor")
	setEnd("tlogs", logEnd, "publicKey", "validFor")
	trJSON, _ := json.Marshal(tr)
	sig, err := referrers.NewKeylessVerifier("sigstore", trJSON, referrers.KeylessIdentity{Issuer: regtest.TestIssuer, Subject: regtest.TestIdentity})
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := referrers.NewKeyVerifier("plain", key.Public())
	p, err := referrers.CompilePolicy(&referrers.Policy{Version: 1, Models: []referrers.Rule{{Match: []string{"**"},
		Signatures: &referrers.SignatureRule{Signers: []string{"corp"}}}}},
		map[string]*referrers.Verifier{"corp": corp, "sigstore": sig, "plain": plain})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range p.AnchorExpiries() {
		got = append(got, e.Anchor+" "+e.NotAfter.UTC().Format(time.RFC3339)+" "+e.What)
	}
	at := func(d time.Time) string { return d.UTC().Format(time.RFC3339) }
	want := []string{
		"corp " + at(now.Add(5*day)) + ` CRL of "CN=Inter" (number 7) nextUpdate`,
		"corp " + at(inter.NotAfter) + ` intermediate certificate "CN=Inter" (serial 5)`,
		"corp " + at(rootCert.NotAfter) + ` root certificate "CN=Root" (serial 4)`,
		"sigstore " + at(caEnd) + " trusted root certificate authority",
		"sigstore " + at(logEnd) + " trusted root transparency log",
	}
	if len(got) != len(want) {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("%d: got %q, want it to start with %q", i, got[i], want[i])
		}
	}
}
