package referrers_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"

	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

func writePolicy(t *testing.T, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadPolicyRefusesBadPolicies(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	pub, _ := os.ReadFile("testdata/cosign/cosign.pub")
	os.WriteFile(filepath.Join(dir, "release.pub"), pub, 0o644)
	ok := `version: 1
trust:
  release: {key: release.pub}
models:
  - match: ["registry.example/models/**"]
    signatures: {signers: [release]}
`
	if _, err := referrers.LoadPolicy(ctx, writePolicy(t, dir, ok)); err != nil {
		t.Fatalf("good policy: %v", err)
	}
	bad := map[string]string{
		"unknown anchor":        strings.Replace(ok, "signers: [release]", "signers: [nobody]", 1),
		"unreadable key":        strings.Replace(ok, "release.pub", "missing.pub", 1),
		"unknown key":           strings.Replace(ok, "signatures:", "signaturez:", 1),
		"bad mode":              strings.Replace(ok, "- match:", "- mode: strict\n    match:", 1),
		"threshold too high":    strings.Replace(ok, "signers: [release]", "signers: [release]\n      threshold: 2", 1),
		"version 2":             strings.Replace(ok, "version: 1", "version: 2", 1),
		"requires nothing":      "version: 1\nmodels:\n  - match: [\"**\"]\n",
		"bad regexp":            strings.Replace(ok, "release: {key: release.pub}", "release: {key: release.pub}\n  ci: {keyless: {issuer: x, subjectRegExp: \"(\", trustedRoot: tr.json}}", 1),
		"two kinds in anchor":   strings.Replace(ok, "{key: release.pub}", "{key: release.pub, x509: {roots: release.pub}}", 1),
		"slsa on other type":    ok + "    attestations:\n      - predicateType: https://example/card\n        signers: [release]\n        slsa: {builderIDs: [x]}\n",
		"bad maxAge":            ok + "    attestations:\n      - predicateType: slsaprovenance1\n        signers: [release]\n        slsa: {maxAge: forever}\n",
		"dependency uri+prefix": ok + "    attestations:\n      - predicateType: slsaprovenance1\n        signers: [release]\n        slsa: {dependencies: [{uri: a, uriPrefix: b}]}\n",
		"not YAML":              "version: [1",
	}
	for name, body := range bad {
		if _, err := referrers.LoadPolicy(ctx, writePolicy(t, dir, body)); !errors.Is(err, referrers.ErrPolicy) {
			t.Errorf("%s: err = %v, want ErrPolicy", name, err)
		}
	}
}

func TestPolicyMatchFirstRuleWinsAndDenyByDefault(t *testing.T) {
	dir := t.TempDir()
	pub, _ := os.ReadFile("testdata/cosign/cosign.pub")
	os.WriteFile(filepath.Join(dir, "k.pub"), pub, 0o644)
	p, err := referrers.LoadPolicy(context.Background(), writePolicy(t, dir, `version: 1
trust: {k: {key: k.pub}}
models:
  - match: ["harbor.acme.example/models/llm/*"]
    signatures: {signers: [k]}
  - match: ["*.dkr.ecr.*.amazonaws.com/llm/**", "harbor.acme.example/models/**"]
    mode: warn
    signatures: {signers: [k]}
  - match: ["harbor.acme.example/experiments/**"]
    reject: true
`))
	if err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string]int{
		"harbor.acme.example/models/llm/llama":              0,
		"harbor.acme.example/models/llm/llama/extra":        1, // * stays within a segment
		"harbor.acme.example/models/vision/vit":             1,
		"123.dkr.ecr.eu-west-1.amazonaws.com/llm/a/b":       1,
		"harbor.acme.example/experiments/x":                 2,
		"ghcr.io/someone/model":                             -1,
		"evil.example/harbor.acme.example/models/llm/llama": -1,
	} {
		if _, got := p.Match(ref); got != want {
			t.Errorf("Match(%q) = %d, want %d", ref, got, want)
		}
	}
}

// TestVerifyCosignFixtureUnderPolicy: what real cosign v3 and v2 attached
// to a model (testdata/cosign) satisfies a policy naming its key, offline,
// from an OCI layout; the same policy with stricter SLSA constraints fails
// with reasons.
func TestVerifyCosignFixtureUnderPolicy(t *testing.T) {
	ctx := context.Background()
	lay, _ := oras.OpenLayout(copyLayout(t))
	model, _ := oras.Resolve(ctx, lay, "v1")
	dir := t.TempDir()
	pub, _ := os.ReadFile("testdata/cosign/cosign.pub")
	os.WriteFile(filepath.Join(dir, "cosign.pub"), pub, 0o644)
	policy := func(slsa string) *referrers.Policy {
		p, err := referrers.LoadPolicy(ctx, writePolicy(t, dir, `version: 1
trust:
  release: {key: cosign.pub}
models:
  - match: ["**"]
    signatures: {signers: [release]}
    attestations:
      - predicateType: https://slsa.dev/provenance/v1
        signers: [release]
        slsa: `+slsa+`
`))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := policy(`{builderIDs: ["https://ci.example.com/trainer@v2"], buildTypes: ["https://example.com/ml-train/v1"],
          externalParameters: {ref: refs/heads/main},
          dependencies: [{uriPrefix: "s3://datasets/", digest: {sha256: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}}]}`)
	rep, err := referrers.VerifyModel(ctx, lay, "fixture", model, good, referrers.VerifyOptions{})
	if err != nil {
		t.Fatalf("%v\n%+v", err, rep)
	}
	verdicts := map[referrers.Verdict]int{}
	for _, f := range rep.Referrers {
		verdicts[f.Verdict]++
	}
	if !rep.Passed || verdicts[referrers.VerdictVerified] != 2 || verdicts[referrers.VerdictLegacy] != 1 {
		t.Fatalf("report %+v", rep)
	}
	for name, slsa := range map[string]string{
		"builder":    `{builderIDs: ["https://ci.example.com/trainer@v3"]}`,
		"dependency": `{dependencies: [{uri: "s3://datasets/approved/wiki"}]}`,
		"digest":     `{dependencies: [{uriPrefix: "s3://datasets/", digest: {sha256: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb}}]}`,
		"maxAge":     `{maxAge: 720h}`,
		"source ref": `{externalParameters: {ref: refs/heads/release}}`,
	} {
		rep, err := referrers.VerifyModel(ctx, lay, "fixture", model, policy(slsa), referrers.VerifyOptions{Now: time.Now()})
		var pe *referrers.PolicyError
		if !errors.As(err, &pe) || rep.Passed {
			t.Errorf("%s: err = %v", name, err)
			continue
		}
		if !strings.Contains(err.Error(), "attestation https://slsa.dev/provenance/v1") {
			t.Errorf("%s: reason does not name the requirement: %v", name, err)
		}
	}
}

// TestPolicyDocExamples: every YAML example in docs/POLICY.md is valid
// against the schema, so the documentation cannot drift from the format.
func TestPolicyDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../docs/POLICY.md")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(string(doc), "```yaml\n")
	n := 0
	for _, p := range parts[1:] {
		block := p[:strings.Index(p, "```")]
		if !strings.HasPrefix(block, "version: 1") {
			continue // the annotated shape, not a policy
		}
		n++
		if err := validatePolicySchema(t, []byte(block)); err != nil {
			t.Errorf("example %d: %v\n%s", n, err, block)
		}
	}
	if n < 4 {
		t.Fatalf("found %d examples", n)
	}
}

func TestWarnAndAuditModesReportWithoutRefusing(t *testing.T) {
	ctx := context.Background()
	lay, _ := oras.OpenLayout(copyLayout(t))
	model, _ := oras.Resolve(ctx, lay, "v1")
	dir := t.TempDir()
	other, _ := os.ReadFile("testdata/oms/keys/signing-key-pub.pem") // not the key that signed
	os.WriteFile(filepath.Join(dir, "other.pub"), other, 0o644)
	for _, mode := range []string{"warn", "audit", "enforce"} {
		p, err := referrers.LoadPolicy(ctx, writePolicy(t, dir, "version: 1\ntrust: {other: {key: other.pub}}\nmodels:\n  - match: [\"**\"]\n    mode: "+mode+"\n    signatures: {signers: [other]}\n"))
		if err != nil {
			t.Fatal(err)
		}
		rep, err := referrers.VerifyModel(ctx, lay, "fixture", model, p, referrers.VerifyOptions{})
		if rep == nil || rep.Passed || string(rep.Mode) != mode {
			t.Fatalf("%s: report %+v", mode, rep)
		}
		if (err != nil) != (mode == "enforce") {
			t.Errorf("%s: err = %v", mode, err)
		}
	}
}

// validatePolicySchema checks a policy (YAML) against policy.schema.json.
func validatePolicySchema(t *testing.T, policy []byte) error {
	t.Helper()
	raw, err := os.ReadFile("policy.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("policy.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile("policy.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(policy)
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		return err
	}
	return schema.Validate(inst)
}

// TestSchemaAndLoaderAgree: what the schema refuses, the loader refuses too,
// so the documented format and the enforced one cannot drift apart.
func TestSchemaAndLoaderAgree(t *testing.T) {
	dir := t.TempDir()
	pub, _ := os.ReadFile("testdata/cosign/cosign.pub")
	os.WriteFile(filepath.Join(dir, "k.pub"), pub, 0o644)
	ok := "version: 1\ntrust: {k: {key: k.pub}}\nmodels:\n  - match: [\"**\"]\n    signatures: {signers: [k]}\n"
	if err := validatePolicySchema(t, []byte(ok)); err != nil {
		t.Fatalf("schema refuses a good policy: %v", err)
	}
	if _, err := referrers.LoadPolicy(context.Background(), writePolicy(t, dir, ok)); err != nil {
		t.Fatalf("loader refuses a good policy: %v", err)
	}
	for name, body := range map[string]string{
		"unknown top-level key": ok + "extra: 1\n",
		"unknown rule key":      strings.Replace(ok, "signatures:", "signaturez:", 1),
		"version 2":             strings.Replace(ok, "version: 1", "version: 2", 1),
		"bad mode":              strings.Replace(ok, "- match:", "- mode: strict\n    match:", 1),
		"two kinds in anchor":   strings.Replace(ok, "{key: k.pub}", "{key: k.pub, x509: {roots: k.pub}}", 1),
		"empty match":           strings.Replace(ok, `match: ["**"]`, "match: []", 1),
		"no models":             "version: 1\nmodels: []\n",
		"no signers":            strings.Replace(ok, "signers: [k]", "signers: []", 1),
		"uppercase digest":      ok + "    attestations:\n      - predicateType: slsaprovenance1\n        signers: [k]\n        slsa: {dependencies: [{uri: a, digest: {sha256: ABC}}]}\n",
		"vsa without its block": ok + "    attestations:\n      - predicateType: vsa\n        signers: [k]\n",
		"vsa without maxAge":    ok + "    attestations:\n      - predicateType: vsa\n        signers: [k]\n        vsa: {verifierIDs: [x], policyDigests: [\"sha256:" + strings.Repeat("a", 64) + "\"]}\n",
		"slsaprovenance (v0.2)": ok + "    attestations:\n      - predicateType: slsaprovenance\n        signers: [k]\n",
		"upper-case key":        strings.Replace(ok, "signatures:", "SIGNATURES:", 1),
	} {
		if validatePolicySchema(t, []byte(body)) == nil {
			t.Errorf("%s: the schema accepts it", name)
		}
		if _, err := referrers.LoadPolicy(context.Background(), writePolicy(t, dir, body)); !errors.Is(err, referrers.ErrPolicy) {
			t.Errorf("%s: the loader accepts it (%v)", name, err)
		}
	}
}
