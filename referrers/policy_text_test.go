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
