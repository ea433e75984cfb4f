// Command verify-then-load is what a serving process does before it loads
// a model: resolve the reference once, verify the model's whole referrer
// graph against the organisation's policy, pull exactly that digest, and
// only then hand the files to the runtime.
//
//	go run ./examples/verify-then-load -plain-http -policy policy.yaml localhost:5000/models/tiny:v1 ./model
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"

	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

func main() {
	plainHTTP := flag.Bool("plain-http", false, "talk HTTP to the registry")
	policyFile := flag.String("policy", "policy.yaml", "policy file")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: verify-then-load [-plain-http] [-policy FILE] REGISTRY/REPO:TAG OUT_DIR")
		os.Exit(2)
	}
	ctx := context.Background()
	policy, err := referrers.LoadPolicy(ctx, *policyFile)
	if err != nil {
		log.Fatal(err)
	}
	target, err := oras.OpenRemote(ctx, flag.Arg(0), oras.RemoteOptions{PlainHTTP: *plainHTTP})
	if err != nil {
		log.Fatal(err)
	}
	model, err := oras.Resolve(ctx, target, target.Reference) // once
	if err != nil {
		log.Fatal(err)
	}
	report, err := referrers.VerifyModel(ctx, target, target.PolicyName(), model, policy, referrers.VerifyOptions{})
	var refused *referrers.PolicyError
	switch {
	case errors.As(err, &refused):
		for _, r := range report.Requirements {
			if !r.Satisfied {
				fmt.Fprintf(os.Stderr, "refused: %s: %s\n", r.What, r.Reason)
			}
		}
		os.Exit(3)
	case err != nil:
		log.Fatal(err)
	}
	res, err := oras.Pull(ctx, target, model, flag.Arg(1), oras.PullOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("verified and pulled %s (%d files); loading…\n", model.Digest, len(res.Files))
	// A real server would now load flag.Arg(1) into its runtime.
}
