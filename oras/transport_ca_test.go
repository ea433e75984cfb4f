package oras_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
)

// TestNewTransportCAFile: --ca-file means the same to every caller of
// NewTransport (pull, admission, audit): a missing file or one without a
// certificate is an error, never a silently empty pool.
func TestNewTransportCAFile(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	ca, _ := regtest.SelfSignedCert(t, dir)
	for _, tc := range []struct {
		name, file string
		ok         bool
	}{
		{"missing", filepath.Join(dir, "absent.pem"), false},
		{"no certificate", notPEM, false},
		{"ca", ca, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := oras.NewTransport(oras.RemoteOptions{CAFile: tc.file})
			if tc.ok != (err == nil) {
				t.Fatalf("NewTransport(%s): %v", tc.name, err)
			}
			if tc.ok && tr.TLSClientConfig.RootCAs == nil {
				t.Fatal("the CA file was not added to the pool")
			}
		})
	}
}
