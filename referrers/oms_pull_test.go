package referrers_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// TestPullVerifiedModelSignature: PullVerified with ModelSignature writes,
// as model.sig, the model-signing bundle that met the rule — not an
// untrusted one attached first — and refuses, before any fetch, a rule
// with no model-signing requirement, a requirement not met (warn mode)
// and a partial pull.
func TestPullVerifiedModelSignature(t *testing.T) {
	ctx := context.Background()
	keys := t.TempDir()
	signers := map[string]*referrers.Signer{}
	for _, name := range []string{"release", "stray"} {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		pem, _ := cryptoutils.MarshalPublicKeyToPEM(k.Public())
		os.WriteFile(filepath.Join(keys, name+".pub"), pem, 0o644)
		s, err := referrers.NewSigner(k)
		if err != nil {
			t.Fatal(err)
		}
		signers[name] = s
	}
	policy := func(t *testing.T, rule string) *referrers.Policy {
		p, err := referrers.LoadPolicy(ctx, writePolicy(t, keys, "version: 1\ntrust: {release: {key: release.pub}}\nmodels:\n  - match: [\"**\"]\n"+rule))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	oms := "    attestations: [{predicateType: model-signing, signers: [release]}]\n"
	for _, tc := range []struct {
		name    string
		rule    string
		include []string
		want    error // nil: pulled with the release bundle as model.sig
	}{
		{"verified bundle written", oms, nil, nil},
		{"rule without model signing", "    signatures: {signers: [release]}\n", nil, referrers.ErrNoModelSigningRequirement},
		{"requirement not met (warn)", "    mode: warn\n    attestations: [{predicateType: model-signing, signers: [release]}]\n", nil, referrers.ErrVerification},
		{"partial pull", oms, []string{"kind:weight"}, errors.New("partial")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tgt, err := oras.OpenLayout(filepath.Join(t.TempDir(), "layout"))
			if err != nil {
				t.Fatal(err)
			}
			desc := model(t, tgt)
			// The untrusted bundle is attached first; it is not the one written.
			for _, name := range []string{"stray", "release"} {
				if name == "release" && tc.name == "requirement not met (warn)" {
					continue
				}
				if name == "release" && tc.name == "rule without model signing" {
					if _, err := referrers.Sign(ctx, tgt, desc, signers[name], referrers.AttachOptions{}); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := referrers.AttestModelSigning(ctx, tgt, desc, signers[name], "tiny", referrers.AttachOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			out := filepath.Join(t.TempDir(), "out")
			rep, res, err := referrers.PullVerified(ctx, tgt, desc, out, policy(t, tc.rule), referrers.PullVerifiedOptions{
				ModelSignature: true, Pull: oras.PullOptions{Include: tc.include}})
			if tc.want != nil {
				if err == nil || res != nil || (tc.include == nil && !errors.Is(err, tc.want)) {
					t.Fatalf("err = %v, result %v (want %v)", err, res, tc.want)
				}
				if _, serr := os.Stat(out); !os.IsNotExist(serr) {
					t.Fatalf("refused pull touched the output folder (%v)", serr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(out, "model.sig"))
			if err != nil {
				t.Fatal(err)
			}
			want, err := rep.ModelSigningBundle()
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("model.sig is not the verified bundle (%v)", err)
			}
			v, _ := referrers.LoadKeyVerifier(ctx, "release", filepath.Join(keys, "release.pub"))
			if _, err := referrers.VerifyOMSDirectory(v, out); err != nil {
				t.Fatalf("model_signing-style check of the pulled folder: %v", err)
			}
		})
	}
}
