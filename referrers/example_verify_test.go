package referrers_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// exampleSignedModel packs a model into a new OCI layout under work, signs
// it with key and returns the layout and the model's descriptor.
func exampleSignedModel(ctx context.Context, work string, key *ecdsa.PrivateKey) (*oras.Target, ocispec.Descriptor) {
	model := filepath.Join(work, "model")
	os.MkdirAll(model, 0o755)
	os.WriteFile(filepath.Join(model, "model.safetensors"), []byte("weights"), 0o644)
	target, err := oras.OpenLayout(filepath.Join(work, "layout"))
	if err != nil {
		panic(err)
	}
	desc, err := oras.Push(ctx, target, "v1", model, oras.PushOptions{})
	if err != nil {
		panic(err)
	}
	signer, err := referrers.NewSigner(key)
	if err != nil {
		panic(err)
	}
	if _, err := referrers.Sign(ctx, target, desc, signer, referrers.AttachOptions{}); err != nil {
		panic(err)
	}
	return target, desc
}

// examplePolicy requires a signature by the release key for every model.
func examplePolicy(pub any) *referrers.Policy {
	release, err := referrers.NewKeyVerifier("release", pub)
	if err != nil {
		panic(err)
	}
	p, err := referrers.CompilePolicy(&referrers.Policy{
		Version: 1,
		Models: []referrers.Rule{{
			Match:      []string{"**"},
			Signatures: &referrers.SignatureRule{Signers: []string{"release"}, Threshold: 1},
		}},
	}, map[string]*referrers.Verifier{"release": release})
	if err != nil {
		panic(err)
	}
	return p
}

// Build a policy in code, with a trust anchor held in memory, as
// sigstore-go builds a verification policy: every model must carry a
// signature by the release key. A rule that names an anchor it was not
// given is refused when compiled, never a rule that matches nothing.
func ExampleCompilePolicy() {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	release, _ := referrers.NewKeyVerifier("release", key.Public())
	p, err := referrers.CompilePolicy(&referrers.Policy{
		Version: 1,
		Models: []referrers.Rule{
			{Match: []string{"registry.example/models/**"}, Signatures: &referrers.SignatureRule{Signers: []string{"release"}, Threshold: 1}},
			{Match: []string{"**"}, Reject: true},
		},
	}, map[string]*referrers.Verifier{"release": release})
	if err != nil {
		panic(err)
	}
	_, rule := p.Match("registry.example/models/llama")
	_, other := p.Match("elsewhere.example/llama")
	fmt.Println(rule, other)

	_, err = referrers.CompilePolicy(&referrers.Policy{
		Version: 1,
		Models:  []referrers.Rule{{Match: []string{"**"}, Signatures: &referrers.SignatureRule{Signers: []string{"ops"}, Threshold: 1}}},
	}, map[string]*referrers.Verifier{"release": release})
	fmt.Println(errors.Is(err, referrers.ErrPolicy))
	// Output:
	// 0 1
	// true
}

// Verify a model in an OCI layout against a policy that trusts a key held
// in memory: the signature is found among the model's referrers, re-read
// from its own manifest and checked. An unsigned model fails the enforced
// rule with a *PolicyError that carries the report.
func ExampleVerifyModel() {
	ctx := context.Background()
	work, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(work)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	target, desc := exampleSignedModel(ctx, work, key)
	policy := examplePolicy(key.Public())

	rep, err := referrers.VerifyModel(ctx, target, "example/layout", desc, policy, referrers.VerifyOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Println(rep.Passed, rep.Mode, rep.Referrers[0].Verdict, rep.Referrers[0].VerifiedBy)

	unsigned, _ := oras.Push(ctx, target, "v2", filepath.Join(work, "model"), oras.PushOptions{
		Annotations: map[string]string{"org.opencontainers.image.version": "2"}})
	rep, err = referrers.VerifyModel(ctx, target, "example/layout", unsigned, policy, referrers.VerifyOptions{})
	var refused *referrers.PolicyError
	fmt.Println(errors.Is(err, referrers.ErrPolicyNotSatisfied), errors.As(err, &refused), rep.Passed)
	// Output:
	// true enforce verified [release]
	// true true false
}

// Verify and pull in one call: the digest resolved once is verified, and
// only then are its files downloaded (each hashed as it streams). Under an
// enforced rule a model that fails is not fetched at all; under warn or
// audit it is pulled and the report says it failed.
func ExamplePullVerified() {
	ctx := context.Background()
	work, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(work)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	target, _ := exampleSignedModel(ctx, work, key)

	desc, err := oras.Resolve(ctx, target, "v1")
	if err != nil {
		panic(err)
	}
	rep, res, err := referrers.PullVerified(ctx, target, desc, filepath.Join(work, "out"), examplePolicy(key.Public()), referrers.PullVerifiedOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Println("passed:", rep.Passed)
	for _, f := range res.Files {
		fmt.Println(f.Status, f.Path, f.Size)
	}

	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, res, err = referrers.PullVerified(ctx, target, desc, filepath.Join(work, "refused"), examplePolicy(stranger.Public()), referrers.PullVerifiedOptions{})
	_, statErr := os.Stat(filepath.Join(work, "refused"))
	fmt.Println(errors.Is(err, referrers.ErrPolicyNotSatisfied), res == nil, os.IsNotExist(statErr))
	// Output:
	// passed: true
	// downloaded model.safetensors 7
	// true true true
}
