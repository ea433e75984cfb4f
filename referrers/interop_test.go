package referrers_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// copyDir copies a fixture directory so a test may change it.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// verifyOMSDir checks a directory signed by the Python model_signing tool.
func verifyOMSDir(v *referrers.Verifier, dir string) error {
	_, err := referrers.VerifyOMSDirectory(v, dir)
	return err
}

// TestOMSFixtures: bundles made by the Python model_signing 1.1.0 tool
// (testdata/oms, see NOTICE) verify, by key and by certificate chain; a
// one-byte change to a file or to model.sig makes each fail.
func TestOMSFixtures(t *testing.T) {
	ctx := context.Background()
	keyV, err := referrers.LoadKeyVerifier(ctx, "oms key", "testdata/oms/keys/signing-key-pub.pem")
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := os.ReadFile("testdata/oms/keys/ca-cert.pem")
	certV, err := referrers.NewX509Verifier("oms ca", ca, referrers.X509Constraints{Subject: "CN=intermediate-ca"})
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		dir string
		v   *referrers.Verifier
	}{
		"elliptic key": {"testdata/oms/v1.1.0-elliptic-key", keyV},
		"certificate":  {"testdata/oms/v1.1.0-certificate", certV},
	} {
		t.Run(name, func(t *testing.T) {
			if err := verifyOMSDir(tc.v, tc.dir); err != nil {
				t.Fatalf("genuine fixture: %v", err)
			}
			// ignore-me is ignored: changing it changes nothing.
			dir := copyDir(t, tc.dir)
			os.WriteFile(filepath.Join(dir, "ignore-me"), []byte("anything"), 0o644)
			if err := verifyOMSDir(tc.v, dir); err != nil {
				t.Fatalf("ignored file changed: %v", err)
			}
			mutations := map[string]func(dir string){
				"file byte flipped": func(dir string) { flip(t, filepath.Join(dir, "signme-1"), 0) },
				"model.sig byte":    func(dir string) { flipJSONByte(t, filepath.Join(dir, "model.sig")) },
				"file removed":      func(dir string) { os.Remove(filepath.Join(dir, "signme-2")) },
				"file added":        func(dir string) { os.WriteFile(filepath.Join(dir, "extra"), []byte("x"), 0o644) },
			}
			for mname, mutate := range mutations {
				dir := copyDir(t, tc.dir)
				mutate(dir)
				if err := verifyOMSDir(tc.v, dir); err == nil {
					t.Errorf("%s: verified", mname)
				}
			}
		})
	}
	// The wrong trust anchor fails each.
	if err := verifyOMSDir(keyV, "testdata/oms/v1.1.0-certificate"); err == nil {
		t.Error("certificate bundle verified with the key")
	}
	strict, _ := referrers.NewX509Verifier("oms ca", ca, referrers.X509Constraints{Subject: "CN=someone-else"})
	if err := verifyOMSDir(strict, "testdata/oms/v1.1.0-certificate"); !errors.Is(err, referrers.ErrVerification) {
		t.Errorf("wrong certificate subject: %v", err)
	}
}

func flip(t *testing.T, p string, i int) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[i] ^= 1
	os.WriteFile(p, b, 0o644)
}

// flipJSONByte changes one character inside the signature value of a
// bundle, keeping it valid JSON and valid base64.
func flipJSONByte(t *testing.T, p string) {
	t.Helper()
	b, _ := os.ReadFile(p)
	s := string(b)
	i := strings.Index(s, `"sig"`)
	if i < 0 {
		i = strings.Index(s, `"signature"`)
	}
	j := strings.Index(s[i+8:], `"`) + i + 8 + 10
	c := s[j]
	r := byte('A')
	if c == 'A' {
		r = 'B'
	}
	os.WriteFile(p, []byte(s[:j]+string(r)+s[j+1:]), 0o644)
}

// TestCosignFixture: what the real cosign v3.1.3 attached to a model
// (testdata/cosign, an OCI layout; see NOTICE) verifies with our code: the
// signature (statement v1) and the SLSA provenance (statement v0.1, subject
// named by repository), though the layout's index reports their
// artifactType as the empty config type.
func TestCosignFixture(t *testing.T) {
	ctx := context.Background()
	lay, err := oras.OpenLayout(copyLayout(t))
	if err != nil {
		t.Fatal(err)
	}
	subject, err := oras.Resolve(ctx, lay, "v1")
	if err != nil {
		t.Fatal(err)
	}
	if subject.Digest != "sha256:a09f7125dbf12b3d61d0b81f5ac4d7a9e36e111022cff1b001d33c95e8d81e45" {
		t.Fatalf("fixture model %s", subject.Digest)
	}
	v, err := referrers.LoadKeyVerifier(ctx, "cosign.pub", "testdata/cosign/cosign.pub")
	if err != nil {
		t.Fatal(err)
	}
	refs, err := oras.Referrers(ctx, lay, subject, "")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, r := range refs {
		ref, err := referrers.FetchReferrer(ctx, lay, r, subject.Digest)
		if err != nil {
			t.Fatal(err)
		}
		st, err := v.Verify(ref.Bundle, subject.Digest)
		if err != nil {
			t.Fatalf("%s: %v", ref.PredicateType, err)
		}
		got[st.PredicateType+" "+st.Type] = true
		if st.PredicateType == referrers.PredicateSLSAProvenance {
			if err := referrers.ValidateProvenance(st.Predicate); err != nil {
				t.Fatalf("cosign's provenance: %v", err)
			}
		}
	}
	for _, want := range []string{
		referrers.PredicateCosignSign + " " + referrers.StatementV1,
		referrers.PredicateSLSAProvenance + " " + referrers.StatementV01,
	} {
		if !got[want] {
			t.Errorf("missing %s; verified %v", want, got)
		}
	}
	// A referrer is checked against the subject asked for.
	for _, r := range refs {
		if _, err := referrers.FetchReferrer(ctx, lay, r, digest.FromString("another model")); err == nil {
			t.Error("a referrer of the fixture model was accepted for another subject")
		}
	}
}

func copyLayout(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "layout")
	err := filepath.Walk("testdata/cosign/layout", func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("testdata/cosign/layout", p)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}
