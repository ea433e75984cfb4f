package referrers_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// TestPolicyTextMeansOneThing: keys are matched byte for byte, a repeated
// key is refused at any depth, and cosign's "slsaprovenance" alias (v0.2
// there) is refused with the spelling to write. Before the strict decoder,
// encoding/json matched keys case-blind and the last spelling won: every
// case here loaded.
func TestPolicyTextMeansOneThing(t *testing.T) {
	dir := t.TempDir()
	pub, _ := os.ReadFile("testdata/cosign/cosign.pub")
	os.WriteFile(filepath.Join(dir, "k.pub"), pub, 0o644)
	ok := `version: 1
trust:
  k: {key: k.pub}
models:
  - match: ["**"]
    signatures: {signers: [k]}
    attestations:
      - predicateType: slsaprovenance1
        signers: [k]
        slsa:
          builderIDs: ["https://ci.acme.example/trainer@v2"]
`
	if _, err := referrers.ParsePolicy(context.Background(), []byte(ok), dir); err != nil {
		t.Fatalf("good policy: %v", err)
	}
	for name, tc := range map[string]struct{ body, want string }{
		"lower-case key after the real one": {strings.Replace(ok, `builderIDs: ["https://ci.acme.example/trainer@v2"]`,
			`builderIDs: ["https://ci.acme.example/trainer@v2"]`+"\n          builderids: [\"https://laptop.example/me\"]", 1),
			`unknown key "builderids" (keys are case-sensitive: write "builderIDs")`},
		"upper-case key":           {strings.Replace(ok, "builderIDs:", "BUILDERIDS:", 1), `unknown key "BUILDERIDS"`},
		"upper-case rule key":      {strings.Replace(ok, "signatures:", "SIGNATURES:", 1), `models[0]: unknown key "SIGNATURES" (keys are case-sensitive: write "signatures")`},
		"upper-case top-level key": {strings.Replace(ok, "models:", "MODELS:", 1), `unknown key "MODELS"`},
		"duplicate top-level key":  {ok + "version: 1\n", `key "version" appears twice (first on line 1)`},
		"duplicate anchor name":    {strings.Replace(ok, "  k: {key: k.pub}", "  k: {key: k.pub}\n  k: {key: other.pub}", 1), `trust: key "k" appears twice`},
		"duplicate deep key": {strings.Replace(ok, `builderIDs: ["https://ci.acme.example/trainer@v2"]`,
			`builderIDs: ["https://ci.acme.example/trainer@v2"]`+"\n          builderIDs: [\"https://laptop.example/me\"]", 1),
			`models[0].attestations[0].slsa: key "builderIDs" appears twice`},
		"duplicate in a flow map": {strings.Replace(ok, "{signers: [k]}", "{signers: [k], signers: [k]}", 1), `key "signers" appears twice`},
		"duplicate map entry":     {strings.Replace(ok, "slsa:\n", "slsa:\n          externalParameters: {ref: a, ref: b}\n", 1), `externalParameters: key "ref" appears twice`},
		"duplicate in JSON":       {`{"version": 1, "models": [{"match": ["**"], "reject": true, "reject": false}]}`, `key "reject" appears twice`},
		"slsaprovenance alias":    {strings.Replace(ok, "predicateType: slsaprovenance1", "predicateType: slsaprovenance", 1), `write slsaprovenance1`},
		"two documents":           {ok + "---\n" + ok, "more than one YAML document"},
		"alias":                   {strings.Replace(ok, "signers: [k]}", "signers: &s [k]}", 1), "anchors and aliases are not allowed"},
		"merge key":               {strings.Replace(ok, "  k: {key: k.pub}", "  k: {<<: {key: k.pub}}", 1), "merge keys"},
	} {
		_, err := referrers.ParsePolicy(context.Background(), []byte(tc.body), dir)
		if !errors.Is(err, referrers.ErrPolicy) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want ErrPolicy naming %q", name, err, tc.want)
		}
	}
}

// TestCompilePolicyInCode: a policy built in code, with an anchor in
// memory, verifies a signed model; a literal Policy that was never compiled
// is refused with ErrPolicy rather than denying every model unexplained.
func TestCompilePolicyInCode(t *testing.T) {
	ctx := context.Background()
	lay, err := oras.OpenLayout(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "w.bin"), []byte("weights"), 0o644)
	model, err := oras.Push(ctx, lay, "v1", dir, oras.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, _ := referrers.NewSigner(key)
	if _, err := referrers.Sign(ctx, lay, model, signer, referrers.AttachOptions{}); err != nil {
		t.Fatal(err)
	}
	release, err := referrers.NewKeyVerifier("release", key.Public())
	if err != nil {
		t.Fatal(err)
	}
	literal := &referrers.Policy{Version: 1, Models: []referrers.Rule{{
		Match:      []string{"**"},
		Signatures: &referrers.SignatureRule{Signers: []string{"release"}},
	}}}
	if _, err := referrers.VerifyModel(ctx, lay, "m", model, literal, referrers.VerifyOptions{}); !errors.Is(err, referrers.ErrPolicy) {
		t.Fatalf("never-compiled policy: err = %v, want ErrPolicy", err)
	}
	p, err := referrers.CompilePolicy(literal, map[string]*referrers.Verifier{"release": release})
	if err != nil {
		t.Fatal(err)
	}
	if literal.Models[0].Signatures.Threshold != 0 || literal.Models[0].Mode != "" {
		t.Errorf("CompilePolicy changed the caller's policy: %+v", literal.Models[0])
	}
	if p.Digest == "" {
		t.Error("a compiled policy has no digest for its summaries")
	}
	rep, err := referrers.VerifyModel(ctx, lay, "m", model, p, referrers.VerifyOptions{})
	if err != nil || !rep.Passed {
		t.Fatalf("compiled policy: err = %v, report %+v", err, rep)
	}
	for name, tc := range map[string]struct {
		p       referrers.Policy
		anchors map[string]*referrers.Verifier
	}{
		"unknown signer":        {*literal, nil},
		"trust not loaded":      {referrers.Policy{Version: 1, Trust: map[string]referrers.Anchor{"x": {Key: "x.pub"}}, Models: literal.Models}, map[string]*referrers.Verifier{"release": release}},
		"no version":            {referrers.Policy{Models: literal.Models}, map[string]*referrers.Verifier{"release": release}},
		"nil verifier":          {*literal, map[string]*referrers.Verifier{"release": nil}},
		"no rules":              {referrers.Policy{Version: 1}, nil},
		"slsaprovenance (v0.2)": {referrers.Policy{Version: 1, Models: []referrers.Rule{{Match: []string{"**"}, Attestations: []referrers.AttestationRule{{PredicateType: "slsaprovenance", Signers: []string{"release"}}}}}}, map[string]*referrers.Verifier{"release": release}},
	} {
		if _, err := referrers.CompilePolicy(&tc.p, tc.anchors); !errors.Is(err, referrers.ErrPolicy) {
			t.Errorf("%s: err = %v, want ErrPolicy", name, err)
		}
	}
}

// TestReasonsBlameTheRightThing: a statement by a trusted signer that fails
// the rule is reported as such, not as a missing signer; the error is the
// model and the first failing requirement, with no Go slice or map syntax.
// The old reason was "0 of 1 required distinct signers among [release]
// (…: builder id … is not one of [https://…])", and the error repeated
// every failing requirement.
func TestReasonsBlameTheRightThing(t *testing.T) {
	ctx := context.Background()
	lay, _ := oras.OpenLayout(copyLayout(t))
	model, _ := oras.Resolve(ctx, lay, "v1")
	dir := t.TempDir()
	pub, _ := os.ReadFile("testdata/cosign/cosign.pub")
	os.WriteFile(filepath.Join(dir, "cosign.pub"), pub, 0o644)
	other, _ := os.ReadFile("testdata/oms/keys/signing-key-pub.pem")
	os.WriteFile(filepath.Join(dir, "other.pub"), other, 0o644)
	p, err := referrers.LoadPolicy(ctx, writePolicy(t, dir, `version: 1
trust:
  release: {key: cosign.pub}
  other: {key: other.pub}
models:
  - match: ["**"]
    attestations:
      - predicateType: slsaprovenance1
        signers: [release]
        slsa:
          builderIDs: ["https://ci.example.com/trainer@v3", "https://ci.example.com/trainer@v4"]
          dependencies: [{uriPrefix: "s3://datasets/", digest: {sha256: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb}}]
      - predicateType: https://example.com/model-card/v1
        signers: [other]
    signatures: {signers: [release]}
`))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := referrers.VerifyModel(ctx, lay, "registry.example/models/fixture", model, p, referrers.VerifyOptions{})
	if err == nil {
		t.Fatal("passed")
	}
	msg := err.Error()
	want := `policy not satisfied: ` + rep.Repository + `@` + model.Digest.String() +
		`: attestation https://slsa.dev/provenance/v1: signed by a trusted signer (release), but does not meet the rule: builder id "https://ci.example.com/trainer@v2" is not one of "https://ci.example.com/trainer@v3", "https://ci.example.com/trainer@v4"`
	if !strings.HasPrefix(msg, want) || !strings.HasSuffix(msg, "(and 1 more failing requirements: see the report)") {
		t.Errorf("error:\n%s\nwant it to start with\n%s", msg, want)
	}
	for _, r := range rep.Requirements {
		if strings.ContainsAny(r.Reason, "[]{}") || strings.Contains(r.Reason, "map[") {
			t.Errorf("Go syntax in %q", r.Reason)
		}
	}
	if card := rep.Requirements[2]; card.Satisfied || card.Reason != "0 of 1 required distinct signers among other (none found)" {
		t.Errorf("model card: %+v", card)
	}
}
