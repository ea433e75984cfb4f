package referrers_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"

	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// Sign a model stored in an OCI layout, then find the signature among its
// referrers, re-read it and verify it against the public key.
func ExampleSign() {
	ctx := context.Background()
	work, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(work)
	model := filepath.Join(work, "model")
	os.MkdirAll(model, 0o755)
	os.WriteFile(filepath.Join(model, "model.gguf"), []byte("weights"), 0o644)

	target, _ := oras.OpenLayout(filepath.Join(work, "layout"))
	desc, _ := oras.Push(ctx, target, "v1", model, oras.PushOptions{})

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, _ := referrers.NewSigner(key)
	if _, err := referrers.Sign(ctx, target, desc, signer, referrers.AttachOptions{}); err != nil {
		panic(err)
	}

	found, _ := referrers.FindBundles(ctx, target, desc, referrers.PredicateCosignSign)
	verifier, _ := referrers.NewKeyVerifier("release", key.Public())
	statement, err := verifier.Verify(found[0].Bundle, desc.Digest)
	if err != nil {
		panic(err)
	}
	fmt.Println(found[0].Manifest.ArtifactType)
	fmt.Println(statement.PredicateType, statement.Names(desc.Digest))
	// Output:
	// application/vnd.dev.sigstore.bundle.v0.3+json
	// https://sigstore.dev/cosign/sign/v1 true
}

// Build a SLSA provenance predicate naming the training data and the base
// model; it is validated before anything is signed.
func ExampleProvenance() {
	dataset, _ := referrers.ParseDependency("uri=s3://acme-datasets/approved/wiki-2026,digest=sha256:" +
		"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08,name=train")
	pred, err := referrers.Provenance{
		BuilderID:          "https://ci.acme.example/trainer@v2",
		BuildType:          "https://acme.example/ml-train/v1",
		ExternalParameters: map[string]any{"recipe": "configs/llama-ft.yaml"},
		Dependencies:       []referrers.Dependency{dataset},
	}.Predicate()
	fmt.Println(err == nil, len(pred) > 0)

	_, err = referrers.Provenance{BuildType: "https://acme.example/ml-train/v1"}.Predicate()
	fmt.Println(err)
	// Output:
	// true true
	// invalid predicate: SLSA provenance v1: provenance.buildDefinition error: buildDefinition.externalParameters required
}
