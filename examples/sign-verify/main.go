// Command sign-verify signs a model in a registry with a cosign key,
// attests its SLSA provenance, and verifies both back from the referrers
// the registry lists, as a deployment pipeline would.
//
//	COSIGN_PASSWORD=… go run ./examples/sign-verify -plain-http -key cosign.key -pub cosign.pub \
//	    -builder https://ci.acme.example/trainer@v2 localhost:5000/models/tiny:v1
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"

	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

func main() {
	plainHTTP := flag.Bool("plain-http", false, "talk HTTP to the registry")
	keyPath := flag.String("key", "cosign.key", "signing key (cosign key, PEM key or KMS URI)")
	pubPath := flag.String("pub", "cosign.pub", "public key to verify with")
	builder := flag.String("builder", "https://ci.example/trainer@v1", "SLSA builder id")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: sign-verify [flags] REGISTRY/REPO:TAG")
		os.Exit(2)
	}
	ctx := context.Background()
	target, err := oras.OpenRemote(ctx, flag.Arg(0), oras.RemoteOptions{PlainHTTP: *plainHTTP})
	if err != nil {
		log.Fatal(err)
	}
	model, err := oras.Resolve(ctx, target, target.Reference) // once: everything after uses the digest
	if err != nil {
		log.Fatal(err)
	}

	signer, err := referrers.LoadSigner(ctx, *keyPath, referrers.EnvPassword)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := referrers.Sign(ctx, target, model, signer, referrers.AttachOptions{}); err != nil {
		log.Fatal(err)
	}
	pred, err := referrers.Provenance{
		BuilderID: *builder, BuildType: "https://example/ml-train/v1",
		ExternalParameters: map[string]any{"recipe": "train.yaml"},
	}.Predicate()
	if err != nil {
		log.Fatal(err)
	}
	if _, err := referrers.Attest(ctx, target, model, signer, referrers.PredicateSLSAProvenance, pred, referrers.AttachOptions{}); err != nil {
		log.Fatal(err)
	}

	verifier, err := referrers.LoadKeyVerifier(ctx, "release", *pubPath)
	if err != nil {
		log.Fatal(err)
	}
	for _, pt := range []string{referrers.PredicateCosignSign, referrers.PredicateSLSAProvenance} {
		found, err := referrers.FindBundles(ctx, target, model, pt)
		if err != nil {
			log.Fatal(err)
		}
		verified := 0
		for _, r := range found {
			if _, err := verifier.Verify(r.Bundle, model.Digest); err == nil {
				verified++
			}
		}
		fmt.Printf("%s: %d of %d verified\n", pt, verified, len(found))
		if verified == 0 {
			os.Exit(3)
		}
	}
}
