// Command push-pull packs a model directory, pushes it to a registry with
// the modelattest Go API, and pulls it back by digest into another folder.
//
//	go run ./examples/push-pull -plain-http localhost:5000/models/tiny:v1 ./my-model ./pulled
//
// Start a registry first with `modelattest registry serve`.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"

	"github.com/modelattest/modelattest/modelspec"
	"github.com/modelattest/modelattest/oras"
)

func main() {
	plainHTTP := flag.Bool("plain-http", false, "talk HTTP to the registry")
	name := flag.String("name", "", "model name for the config")
	flag.Parse()
	if flag.NArg() != 3 {
		fmt.Fprintln(os.Stderr, "usage: push-pull [-plain-http] [-name NAME] REGISTRY/REPO:TAG MODEL_DIR OUT_DIR")
		os.Exit(2)
	}
	ref, modelDir, outDir := flag.Arg(0), flag.Arg(1), flag.Arg(2)
	ctx := context.Background()

	target, err := oras.OpenRemote(ctx, ref, oras.RemoteOptions{PlainHTTP: *plainHTTP})
	if err != nil {
		log.Fatal(err)
	}
	pushed, err := oras.Push(ctx, target, target.Reference, modelDir, oras.PushOptions{
		Metadata: modelspec.Metadata{Name: *name},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("pushed", pushed.Digest)

	// Resolve the tag once; pull by that digest only.
	desc, err := oras.Resolve(ctx, target, target.Reference)
	if err != nil {
		log.Fatal(err)
	}
	res, err := oras.Pull(ctx, target, desc, outDir, oras.PullOptions{})
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range res.Files {
		fmt.Printf("%-10s %s (%d bytes)\n", f.Status, f.Path, f.Size)
	}
}
