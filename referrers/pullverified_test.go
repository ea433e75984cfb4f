package referrers_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// TestPullVerified: one call verifies, then pulls the same digest; the
// rule's mode decides whether a failing model is pulled, and an enforced
// failure fetches nothing.
func TestPullVerified(t *testing.T) {
	ctx := context.Background()
	release, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, err := referrers.NewSigner(release)
	if err != nil {
		t.Fatal(err)
	}
	keys := t.TempDir()
	for name, k := range map[string]*ecdsa.PrivateKey{"release.pub": release, "other.pub": other} {
		pem, _ := cryptoutils.MarshalPublicKeyToPEM(k.Public())
		os.WriteFile(filepath.Join(keys, name), pem, 0o644)
	}
	policy := func(t *testing.T, signerKey, mode string) *referrers.Policy {
		p, err := referrers.LoadPolicy(ctx, writePolicy(t, keys, "version: 1\ntrust: {k: {key: "+signerKey+"}}\nmodels:\n  - match: [\"**\"]\n    mode: "+mode+"\n    signatures: {signers: [k]}\n"))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, key, mode string
		passed, pulled  bool
		wantErr         error
	}{
		{"passes", "release.pub", "enforce", true, true, nil},
		{"fails enforce", "other.pub", "enforce", false, false, referrers.ErrPolicyNotSatisfied},
		{"fails warn", "other.pub", "warn", false, true, nil},
		{"fails audit", "other.pub", "audit", false, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tgt, err := oras.OpenLayout(filepath.Join(t.TempDir(), "layout"))
			if err != nil {
				t.Fatal(err)
			}
			desc := model(t, tgt)
			if _, err := referrers.Sign(ctx, tgt, desc, signer, referrers.AttachOptions{}); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "out")
			var seen *referrers.Report
			rep, res, err := referrers.PullVerified(ctx, tgt, desc, out, policy(t, tc.key, tc.mode), referrers.PullVerifiedOptions{
				OnVerified: func(r *referrers.Report) error {
					seen = r
					if _, err := os.Stat(out); !os.IsNotExist(err) {
						t.Errorf("output folder exists before the verdict was given: %v", err)
					}
					return nil
				},
			})
			if !errors.Is(err, tc.wantErr) || (tc.wantErr != nil) != (err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if rep == nil || rep != seen || rep.Passed != tc.passed || string(rep.Mode) != tc.mode || rep.Model.Digest != desc.Digest {
				t.Fatalf("report %+v (hook saw %p)", rep, seen)
			}
			if tc.pulled {
				if res == nil || res.Manifest.Digest != desc.Digest || len(res.Files) != 6 {
					t.Fatalf("pull result %+v", res)
				}
				if got := regtest.Entries(t, out); len(got) == 0 {
					t.Fatal("nothing pulled")
				}
				return
			}
			var pe *referrers.PolicyError
			if !errors.As(err, &pe) || pe.Report != rep {
				t.Errorf("err %v does not carry the report", err)
			}
			if res != nil {
				t.Errorf("refused model has a pull result %+v", res)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("refused model: output folder touched (%v)", err)
			}
		})
	}
}

// TestPullVerifiedRefusals: no policy is an error, never an unverified
// pull; a hook's error stops the pull before any file is fetched.
func TestPullVerifiedRefusals(t *testing.T) {
	ctx := context.Background()
	tgt, err := oras.OpenLayout(filepath.Join(t.TempDir(), "layout"))
	if err != nil {
		t.Fatal(err)
	}
	desc := model(t, tgt)
	out := filepath.Join(t.TempDir(), "out")
	if _, _, err := referrers.PullVerified(ctx, tgt, desc, out, nil, referrers.PullVerifiedOptions{}); !errors.Is(err, referrers.ErrNoPolicy) {
		t.Errorf("nil policy: err = %v", err)
	}
	dir := t.TempDir()
	pem, _ := os.ReadFile("testdata/cosign/cosign.pub")
	os.WriteFile(filepath.Join(dir, "k.pub"), pem, 0o644)
	p, err := referrers.LoadPolicy(ctx, writePolicy(t, dir, "version: 1\ntrust: {k: {key: k.pub}}\nmodels:\n  - match: [\"**\"]\n    mode: audit\n    signatures: {signers: [k]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop here")
	rep, res, err := referrers.PullVerified(ctx, tgt, desc, out, p, referrers.PullVerifiedOptions{
		OnVerified: func(*referrers.Report) error { return stop },
	})
	if !errors.Is(err, stop) || rep == nil || res != nil {
		t.Errorf("hook error: rep %v, res %v, err %v", rep, res, err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("output folder touched after the hook refused (%v)", err)
	}
}
