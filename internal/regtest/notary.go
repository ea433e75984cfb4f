package regtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/digitorus/timestamp"
)

// NotaryCA is a test PKI for Notary Project signatures: a root CA that
// issues code-signing leaves and signs CRLs, as notation requires them
// (key usage, codeSigning EKU, a self-signed root at the chain's end).
type NotaryCA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	// revoked lists the serials the next CRL names.
	revoked []*big.Int
	serial  int64
}

// NotaryLeaf is a signing key and its chain, leaf first, root last.
type NotaryLeaf struct {
	Key   *ecdsa.PrivateKey
	Chain []*x509.Certificate
}

// NewNotaryCA makes a root CA named cn, valid from an hour ago for a year
// (or from notBefore when set).
func NewNotaryCA(t testing.TB, cn string) *NotaryCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn, Organization: []string{"Acme"}, Country: []string{"US"}},
		NotBefore: time.Now().Add(-72 * time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &NotaryCA{Cert: c, Key: key, serial: 100}
}

// Leaf issues a code-signing certificate for subject, valid from notBefore
// to notAfter. crlURL, when set, is its CRL distribution point.
func (ca *NotaryCA) Leaf(t testing.TB, subject pkix.Name, notBefore, notAfter time.Time, crlURL string) *NotaryLeaf {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	l := ca.LeafFor(t, key.Public(), subject, notBefore, notAfter, crlURL)
	l.Key = key
	return l
}

// LeafFor is Leaf for a public key whose private half lives elsewhere (a
// cosign key file, a KMS); the returned Key is nil.
func (ca *NotaryCA) LeafFor(t testing.TB, pub crypto.PublicKey, subject pkix.Name, notBefore, notAfter time.Time, crlURL string) *NotaryLeaf {
	t.Helper()
	ca.serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(ca.serial), Subject: subject, NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}, BasicConstraintsValid: true}
	if crlURL != "" {
		tmpl.CRLDistributionPoints = []string{crlURL}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &NotaryLeaf{Chain: []*x509.Certificate{c, ca.Cert}}
}

// Revoke puts a leaf's serial on the next CRL.
func (ca *NotaryCA) Revoke(l *NotaryLeaf) { ca.revoked = append(ca.revoked, l.Chain[0].SerialNumber) }

// CRL returns a DER CRL naming every revoked serial, valid for a day.
func (ca *NotaryCA) CRL(t testing.TB) []byte {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, s := range ca.revoked {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: time.Now().Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(time.Now().UnixNano()),
		ThisUpdate: time.Now().Add(-time.Hour), NextUpdate: time.Now().Add(24 * time.Hour), RevokedCertificateEntries: entries}, ca.Cert, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// WritePEM writes certificates as PEM to path.
func WritePEM(t testing.TB, path string, certs ...*x509.Certificate) string {
	t.Helper()
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// WriteKey writes an ECDSA key as PKCS#8 PEM to path.
func WriteKey(t testing.TB, path string, key crypto.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TSA is a local RFC 3161 timestamp authority over HTTP: a root and a
// timestamping leaf (its extended key usage critical, as notation
// requires), answering with digitorus/timestamp responses.
type TSA struct {
	URL  string
	Root *x509.Certificate
	leaf *x509.Certificate
	key  *ecdsa.PrivateKey

	mu  sync.Mutex
	now func() time.Time
}

var oidExtKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 37}
var oidTimeStamping = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 8}

// NewTSA starts a timestamp authority whose certificates are valid from
// validFrom for ten years.
func NewTSA(t testing.TB, validFrom time.Time) *TSA {
	t.Helper()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rt := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test TSA Root", Organization: []string{"Acme"}},
		NotBefore: validFrom, NotAfter: validFrom.Add(10 * 365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, rt, rt, rootKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(der)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	eku, _ := asn1.Marshal([]asn1.ObjectIdentifier{oidTimeStamping})
	lt := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Test TSA", Organization: []string{"Acme"}},
		NotBefore: validFrom, NotAfter: validFrom.Add(10 * 365 * 24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtraExtensions: []pkix.Extension{{Id: oidExtKeyUsage, Critical: true, Value: eku}}, BasicConstraintsValid: true}
	der, err = x509.CreateCertificate(rand.Reader, lt, root, key.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	tsa := &TSA{Root: root, leaf: leaf, key: key, now: time.Now}
	srv := httptest.NewServer(http.HandlerFunc(tsa.serve))
	t.Cleanup(srv.Close)
	tsa.URL = srv.URL
	return tsa
}

// SetTime makes the authority stamp at the time now returns (a clock set
// in the past stands for a signature timestamped back then).
func (a *TSA) SetTime(now func() time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.now = now
}

func (a *TSA) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req, err := timestamp.ParseRequest(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	now := a.now()
	a.mu.Unlock()
	ts := timestamp.Timestamp{HashAlgorithm: req.HashAlgorithm, HashedMessage: req.HashedMessage, Time: now, Nonce: req.Nonce,
		Policy: asn1.ObjectIdentifier{1, 2, 3, 4, 1}, Accuracy: time.Second, AddTSACertificate: true}
	resp, err := ts.CreateResponseWithOpts(a.leaf, a.key, crypto.SHA256)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/timestamp-reply")
	w.Write(resp)
}
