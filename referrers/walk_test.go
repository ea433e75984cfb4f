package referrers_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"oras.land/oras-go/v2/registry/remote/errcode"
	"oras.land/oras-go/v2/registry/remote/retry"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// signedTree pushes a model to tgt, signs it, attests it, and signs the
// attestation: a graph two levels deep.
func signedTree(t *testing.T, tgt *oras.Target, s *referrers.Signer) (model, sig, att, attSig ocispec.Descriptor) {
	t.Helper()
	ctx := context.Background()
	model = pushModel(t, tgt)
	var err error
	if sig, err = referrers.Sign(ctx, tgt, model, s, referrers.AttachOptions{}); err != nil {
		t.Fatal(err)
	}
	if att, err = referrers.Attest(ctx, tgt, model, s, "https://example.com/eval/v1", []byte(`{"score":1}`), referrers.AttachOptions{}); err != nil {
		t.Fatal(err)
	}
	if attSig, err = referrers.Sign(ctx, tgt, att, s, referrers.AttachOptions{}); err != nil {
		t.Fatal(err)
	}
	return
}

func newSigner(t *testing.T) (*referrers.Signer, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, err := referrers.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	return s, key
}

// TestWalk: one walk, breadth-first, parents before children, each node
// knowing its parent and depth; a node the callback does not descend into
// has no children listed; MaxDepth stops the walk.
func TestWalk(t *testing.T) {
	ctx := context.Background()
	s, _ := newSigner(t)
	for name, open := range targets(t) {
		t.Run(name, func(t *testing.T) {
			tgt := open(t)
			model, sig, att, attSig := signedTree(t, tgt, s)
			var order []digest.Digest
			root, err := referrers.Walk(ctx, tgt, model, referrers.WalkOptions{}, func(_ context.Context, n *referrers.Node) (bool, error) {
				order = append(order, n.Digest)
				if n.Parent == nil || n.Depth != depthOf(n) {
					t.Errorf("%s: parent %v, depth %d", n.Digest, n.Parent, n.Depth)
				}
				return true, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(order) != 3 || order[2] != attSig.Digest {
				t.Fatalf("visit order %v, want the two referrers of the model then %s", order, attSig.Digest)
			}
			if root.Digest != model.Digest || len(root.Referrers) != 2 {
				t.Fatalf("root %+v", root)
			}
			for _, n := range root.Referrers {
				switch n.Digest {
				case sig.Digest:
					if len(n.Referrers) != 0 {
						t.Errorf("signature has referrers %v", n.Referrers)
					}
				case att.Digest:
					if len(n.Referrers) != 1 || n.Referrers[0].Digest != attSig.Digest || n.Referrers[0].Parent != n {
						t.Errorf("attestation's referrers %v", n.Referrers)
					}
				default:
					t.Errorf("unexpected referrer %s", n.Digest)
				}
			}

			// Not descending into the attestation hides its signature.
			root, err = referrers.Walk(ctx, tgt, model, referrers.WalkOptions{}, func(_ context.Context, n *referrers.Node) (bool, error) {
				return n.Digest != att.Digest, nil
			})
			if err != nil || count(root) != 2 {
				t.Errorf("no descent: %d nodes, err %v", count(root), err)
			}
			// Nor does a depth of one.
			root, err = referrers.Walk(ctx, tgt, model, referrers.WalkOptions{Limits: referrers.Limits{MaxDepth: 1}}, nil)
			if err != nil || count(root) != 2 {
				t.Errorf("MaxDepth 1: %d nodes, err %v", count(root), err)
			}
			// A callback's error stops the walk and comes back as is.
			stop := errors.New("stop")
			if _, err := referrers.Walk(ctx, tgt, model, referrers.WalkOptions{}, func(context.Context, *referrers.Node) (bool, error) { return false, stop }); err != stop {
				t.Errorf("callback error: %v", err)
			}
		})
	}
}

func depthOf(n *referrers.Node) int {
	d := 0
	for p := n; p.Parent != nil; p = p.Parent {
		d++
	}
	return d
}

func count(n *referrers.Node) int {
	c := 0
	for _, k := range n.Referrers {
		c += 1 + count(k)
	}
	return c
}

// noRetry answers a 5xx at once: the test is about what is done with it.
var noRetry = &retry.GenericPolicy{Retryable: func(*http.Response, error) (bool, error) { return false, nil },
	Backoff: retry.ExponentialBackoff(time.Millisecond, 2, 0), MinWait: time.Millisecond, MaxWait: time.Millisecond}

// TestListingErrorsAreReported: a registry that answers 500 when asked for
// the referrers of a nested referrer (an attestation's signatures) makes
// the walk, and so verification, fail with that error; it is never taken
// as "no referrers", which could hide a signature a rule depends on or a
// revocation-like statement. A listing that is not found is "none".
func TestListingErrorsAreReported(t *testing.T) {
	ctx := context.Background()
	s, key := newSigner(t)
	proxy := regtest.NewProxy(t, regtest.Embedded(t, ""))
	tgt, err := oras.OpenRemote(ctx, proxy.Host+"/models/tiny", oras.RemoteOptions{PlainHTTP: true, RetryPolicy: noRetry})
	if err != nil {
		t.Fatal(err)
	}
	model, _, att, _ := signedTree(t, tgt, s)
	dir := t.TempDir()
	pub, _ := cryptoutils.MarshalPublicKeyToPEM(key.Public())
	os.WriteFile(filepath.Join(dir, "k.pub"), pub, 0o644)
	p, err := referrers.LoadPolicy(ctx, writePolicy(t, dir, "version: 1\ntrust: {k: {key: k.pub}}\nmodels:\n  - match: [\"**\"]\n    signatures: {signers: [k]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	// Control: the graph verifies.
	if _, err := referrers.VerifyModel(ctx, tgt, "models/tiny", model, p, referrers.VerifyOptions{}); err != nil {
		t.Fatalf("control: %v", err)
	}

	proxy.SetFault(func(r *http.Request) int {
		if strings.HasSuffix(r.URL.Path, "/referrers/"+att.Digest.String()) {
			return http.StatusInternalServerError
		}
		return 0
	})
	defer proxy.SetFault(nil)
	var resp *errcode.ErrorResponse
	if _, err := referrers.Walk(ctx, tgt, model, referrers.WalkOptions{}, nil); !errors.As(err, &resp) || resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("walk: err = %v, want the 500", err)
	}
	rep, err := referrers.VerifyModel(ctx, tgt, "models/tiny", model, p, referrers.VerifyOptions{})
	if err == nil || errors.Is(err, referrers.ErrPolicyNotSatisfied) || rep != nil {
		t.Errorf("verify: report %v, err %v; want the listing error, no verdict", rep, err)
	}

	// The same holds for cosign v2's .sig tag: only "not found" is none.
	proxy.SetFault(func(r *http.Request) int {
		if strings.HasSuffix(r.URL.Path, "/manifests/"+referrers.LegacySignatureTag(model.Digest)) {
			return http.StatusInternalServerError
		}
		return 0
	})
	rep, err = referrers.VerifyModel(ctx, tgt, "models/tiny", model, p, referrers.VerifyOptions{})
	if !errors.As(err, &resp) || resp.StatusCode != http.StatusInternalServerError || rep != nil {
		t.Errorf("legacy tag: report %v, err %v; want the 500, no verdict", rep, err)
	}
}

// pushModel is model under a name that the results of signedTree do not
// shadow.
func pushModel(t *testing.T, tgt *oras.Target) ocispec.Descriptor { t.Helper(); return model(t, tgt) }
