package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelattest/modelattest/internal/regtest"
)

// writeKeyPolicy writes a policy trusting keys/cosign.pub for every model:
// a signature, SLSA provenance from the good builder, model signing.
func writeKeyPolicy(t testing.TB, keys string, withOMS bool) string {
	t.Helper()
	oms := ""
	if withOMS {
		oms = "\n      - predicateType: model-signing\n        signers: [release]"
	}
	p := filepath.Join(keys, "policy.yaml")
	os.WriteFile(p, []byte(fmt.Sprintf(`version: 1
trust:
  release: {key: cosign.pub}
models:
  - match: ["**"]
    signatures: {signers: [release]}
    attestations:
      - predicateType: https://slsa.dev/provenance/v1
        signers: [release]
        slsa: {builderIDs: ["https://ci.acme.example/trainer@v2"], dependencies: [{uriPrefix: "s3://acme-datasets/approved/"}]}%s
`, oms)), 0o644)
	return p
}

// TestVerifiedPullOnEveryTarget: a model signed and attested with the CLI
// passes verify and a verified pull on the embedded registry (Referrers
// API), on the distribution registry (tag schema) and, after copy -r into
// an OCI layout, on that layout with no registry running (air gap).
func TestVerifiedPullOnEveryTarget(t *testing.T) {
	keys := keyDir(t)
	policy := writeKeyPolicy(t, keys, true)
	key := filepath.Join(keys, "cosign.key")
	for name, start := range map[string]func(t *testing.T) string{
		"embedded":     func(t *testing.T) string { return regtest.Embedded(t, "") },
		"distribution": func(t *testing.T) string { return regtest.Distribution(t, "") },
	} {
		t.Run(name, func(t *testing.T) {
			host := start(t)
			ref := host + "/models/tiny:v1"
			model := regtest.ModelDir(t, 8192)
			ma(t, "push", "--plain-http", "--no-progress", ref, model)
			ma(t, "sign", "--plain-http", "--key", key, ref)
			ma(t, "attest", "--plain-http", "--key", key, "--type", "slsaprovenance1", "--predicate", filepath.Join(keys, "provenance.json"), ref)
			ma(t, "attest", "--plain-http", "--key", key, "--type", "model-signing", ref)
			out := ma(t, "verify", "--plain-http", "--policy", policy, ref)
			if !strings.Contains(out, "Result:  PASS") {
				t.Fatalf("verify:\n%s", out)
			}
			pulled := filepath.Join(t.TempDir(), "pulled")
			ma(t, "pull", "--plain-http", "--no-progress", "--policy", policy, "-o", pulled, ref)
			regtest.SameTree(t, model, pulled)

			// Air gap: carry the model and its referrers in a layout.
			layout := filepath.Join(t.TempDir(), "airgap")
			ma(t, "copy", "-r", "--from-plain-http", "--no-progress", ref, "--to-oci-layout", layout+":v1")
			offline := filepath.Join(t.TempDir(), "offline")
			ma(t, "pull", "--oci-layout", "--no-progress", "--policy", policy, "-o", offline, layout+":v1")
			regtest.SameTree(t, model, offline)
		})
	}
}

// TestPolicyAcceptsCosignV3Referrers: a signature and SLSA provenance made
// by cosign v3 with a key satisfy a policy naming that key.
func TestPolicyAcceptsCosignV3Referrers(t *testing.T) {
	cosign := regtest.Tool(t, "cosign-v3")
	keys := cosignEnv(t, cosign)
	os.WriteFile(filepath.Join(keys, "provenance.json"), []byte(provenancePredicate), 0o644)
	policy := writeKeyPolicy(t, keys, false)
	h := regtest.Embedded(t, "")
	digest := digestOf(t, ma(t, "push", "--plain-http", "--no-progress", h+"/models/tiny:v1", regtest.ModelDir(t, 2048)))
	ref := h + "/models/tiny@" + digest
	args := []string{"--key", "cosign.key", "--signing-config", "signing-config.json", "--allow-http-registry", "--yes"}
	if out, err := regtest.RunIn(keys, cosign, append(append([]string{"sign"}, args...), ref)...); err != nil {
		t.Fatalf("cosign sign: %v\n%s", err, out)
	}
	if out, code := maCode(t, "verify", "--plain-http", "--policy", policy, ref); code != 3 || !strings.Contains(out, "attestation https://slsa.dev/provenance/v1: 0 of 1") {
		t.Fatalf("without provenance: exit %d\n%s", code, out)
	}
	if out, err := regtest.RunIn(keys, cosign, append(append([]string{"attest", "--type", "slsaprovenance1", "--predicate", "provenance.json"}, args...), ref)...); err != nil {
		t.Fatalf("cosign attest: %v\n%s", err, out)
	}
	out := ma(t, "verify", "--plain-http", "--policy", policy, ref)
	if !strings.Contains(out, "Result:  PASS") {
		t.Fatalf("verify:\n%s", out)
	}
}

// TestVerificationSummary: verify --attach-vsa signs a SLSA VSA naming the
// policy digest and the attestations that counted, and attaches it.
func TestVerificationSummary(t *testing.T) {
	keys := keyDir(t)
	policy := writeKeyPolicy(t, keys, false)
	key := filepath.Join(keys, "cosign.key")
	ref := regtest.Embedded(t, "") + "/models/tiny:v1"
	ma(t, "push", "--plain-http", "--no-progress", ref, regtest.ModelDir(t, 100))
	ma(t, "sign", "--plain-http", "--key", key, ref)
	ma(t, "attest", "--plain-http", "--key", key, "--type", "slsaprovenance1", "--predicate", filepath.Join(keys, "provenance.json"), ref)
	ma(t, "verify", "--plain-http", "--policy", policy, "--attach-vsa", "--verifier-id", "https://ci.acme.example/gate", "--key", key, ref)

	tree := ma(t, "discover", "--plain-http", "--format", "json", ref)
	if !strings.Contains(tree, "https://slsa.dev/verification_summary/v1") {
		t.Fatalf("no VSA referrer:\n%s", tree)
	}
	policyBytes, _ := os.ReadFile(policy)
	vsa := verifiedPredicate(t, ref, filepath.Join(keys, "cosign.pub"), "https://slsa.dev/verification_summary/v1")
	var got struct {
		VerificationResult string `json:"verificationResult"`
		Verifier           struct {
			ID string `json:"id"`
		} `json:"verifier"`
		Policy struct {
			Digest map[string]string `json:"digest"`
		} `json:"policy"`
		InputAttestations []struct {
			URI string `json:"uri"`
		} `json:"inputAttestations"`
	}
	json.Unmarshal(vsa, &got)
	if got.VerificationResult != "PASSED" || got.Verifier.ID != "https://ci.acme.example/gate" || got.Policy.Digest["sha256"] != sha256hex(policyBytes) || len(got.InputAttestations) != 2 {
		t.Fatalf("VSA %s", vsa)
	}
}

// TestPolicyAcceptsCosignV2LegacySignature: cosign v2's default signature
// (a sha256-<hex>.sig tag, simple signing) counts under a policy naming the
// key; on a registry without the Referrers API, as cosign v2 users have.
func TestPolicyAcceptsCosignV2LegacySignature(t *testing.T) {
	cosign := regtest.Tool(t, "cosign-v2")
	keys := cosignEnv(t, cosign)
	policy := filepath.Join(keys, "policy.yaml")
	os.WriteFile(policy, []byte("version: 1\ntrust: {release: {key: cosign.pub}}\nmodels:\n  - match: [\"**\"]\n    signatures: {signers: [release]}\n"), 0o644)
	h := regtest.Distribution(t, "")
	digest := digestOf(t, ma(t, "push", "--plain-http", "--no-progress", h+"/models/tiny:v1", regtest.ModelDir(t, 2048)))
	ref := h + "/models/tiny@" + digest
	if out, code := maCode(t, "verify", "--plain-http", "--policy", policy, ref); code != 3 {
		t.Fatalf("unsigned: exit %d\n%s", code, out)
	}
	if out, err := regtest.RunIn(keys, cosign, "sign", "--key", "cosign.key", "--tlog-upload=false", "--allow-http-registry", "--yes", ref); err != nil {
		t.Fatalf("cosign sign: %v\n%s", err, out)
	}
	out := ma(t, "verify", "--plain-http", "--policy", policy, ref)
	if !strings.Contains(out, "Result:  PASS") || !strings.Contains(out, "legacy by release") {
		t.Fatalf("verify:\n%s", out)
	}
}
