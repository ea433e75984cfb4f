package admission

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A rotated serving certificate is picked up without a restart; a pair
// that does not load keeps the one before.
func TestServingCertificateReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	write := func(cert, key []byte) {
		t.Helper()
		if err := os.WriteFile(certFile, cert, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyFile, key, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	a, err := GenerateCerts(CertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	write(a.Cert, a.Key)
	f := newFixture(t)
	w := f.webhook(Options{})
	k, err := newKeyPairReloader(certFile, keyFile, time.Millisecond, w)
	if err != nil {
		t.Fatal(err)
	}
	leaf := func() []byte {
		time.Sleep(2 * time.Millisecond)
		c, err := k.get(nil)
		if err != nil {
			t.Fatal(err)
		}
		return c.Certificate[0]
	}
	first := leaf()
	b, _ := GenerateCerts(CertOptions{})
	write(b.Cert, b.Key)
	second := leaf()
	if bytes.Equal(first, second) {
		t.Fatal("the rotated certificate was not picked up")
	}
	write([]byte("garbage"), b.Key)
	if !bytes.Equal(leaf(), second) {
		t.Fatal("a broken certificate file replaced the working one")
	}
	if _, err := newKeyPairReloader(certFile, keyFile, 0, w); err == nil {
		t.Fatal("a broken pair loaded at start")
	}
}
