package integration

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelattest/modelattest/internal/regtest"
	tee "github.com/modelattest/modelattest/runtime"
)

// writeRuntimePolicy trusts keys/cosign.pub for every model and accepts
// the simulated provider's launch measurement, debug forbidden.
func writeRuntimePolicy(t *testing.T, keys, extra string) string {
	t.Helper()
	p := filepath.Join(keys, "runtime-policy.yaml")
	os.WriteFile(p, []byte(`version: 1
trust:
  release: {key: cosign.pub}
models:
  - match: ["**"]
    signatures: {signers: [release]}
runtime:
  measurements: ["`+hex.EncodeToString(tee.SimulatedMeasurement)+`"]
  minimum_tcb: {snp: 8}
  debug_allowed: false
`+extra), 0o644)
	return p
}

// TestRuntimeSimulatedEndToEnd: runtime load (a verified pull, then
// simulated-snp evidence) and runtime verify through the CLI on the
// embedded registry. Genuine evidence passes, labelled INSECURE; each
// tampering is refused with exit 3 at its own step; an unsigned model gets
// no evidence and nothing lands.
func TestRuntimeSimulatedEndToEnd(t *testing.T) {
	host := regtest.Embedded(t, "")
	keys := keyDir(t)
	policy := writeRuntimePolicy(t, keys, "")
	signed, unsigned := host+"/models/tee:v1", host+"/models/tee:unsigned"
	model := regtest.ModelDir(t, 4096)
	ma(t, "push", "--plain-http", "--no-progress", signed, model)
	ma(t, "sign", "--plain-http", "--key", filepath.Join(keys, "cosign.key"), signed)
	otherDigest := digestOf(t, ma(t, "push", "--plain-http", "--no-progress", unsigned, regtest.ModelDir(t, 2048)))

	sim := filepath.Join(t.TempDir(), "sim")
	nonce := "00112233445566778899aabbccddeeff"
	out := filepath.Join(t.TempDir(), "model")
	evFile := filepath.Join(t.TempDir(), "evidence.json")
	stdout := ma(t, "runtime", "load", "--plain-http", signed, "-o", out, "--policy", policy, "--nonce", nonce,
		"--evidence", evFile, "--tee", "simulated-snp", "--simulated-root", sim)
	if !strings.Contains(stdout, "INSECURE") || !strings.Contains(stdout, "Evidence: "+evFile) {
		t.Fatalf("runtime load:\n%s", stdout)
	}
	regtest.SameTree(t, model, out)

	events := filepath.Join(t.TempDir(), "events.jsonl")
	verify := func(file string, extra ...string) (string, int) {
		args := append([]string{"runtime", "verify", "--plain-http", file, "--policy", policy, "--nonce", nonce,
			"--tee-roots", filepath.Join(sim, "roots.pem")}, extra...)
		return maCode(t, args...)
	}
	// AMD's embedded roots (no --tee-roots) refuse the simulated chain.
	if got, code := maCode(t, "runtime", "verify", "--plain-http", evFile, "--policy", policy, "--nonce", nonce); code != 3 ||
		!strings.Contains(got, "FAIL  "+tee.StepChain+": ") || !strings.Contains(got, "AMD's embedded roots") {
		t.Fatalf("simulated evidence under AMD's roots: exit %d\n%s", code, got)
	}
	got, code := verify(evFile, "--events", events)
	if code != 0 || !strings.Contains(got, "Result:   PASS (INSECURE simulated evidence)") ||
		!strings.Contains(got, "revocation not checked offline") || !strings.Contains(got, "referrer graph re-walked") {
		t.Fatalf("genuine evidence: exit %d\n%s", code, got)
	}
	lines, _ := os.ReadFile(events)
	var event struct {
		Data struct {
			Decision struct {
				Face    string `json:"face"`
				Allowed bool   `json:"allowed"`
			} `json:"unmapped"`
		} `json:"data"`
	}
	if n := len(regtest.DecisionEvents(t, lines)); n != 1 { // each line checked against events/decision.schema.json
		t.Fatalf("%d decision events, want 1:\n%s", n, lines)
	}
	if err := json.Unmarshal(lines, &event); err != nil || event.Data.Decision.Face != "runtime-verify" || !event.Data.Decision.Allowed {
		t.Fatalf("event %v: %s", err, lines)
	}

	raw, _ := os.ReadFile(evFile)
	rewrite := func(t *testing.T, f func(*tee.Evidence)) string {
		ev, err := tee.ParseEvidence(raw)
		if err != nil {
			t.Fatal(err)
		}
		f(ev)
		p := filepath.Join(t.TempDir(), "evidence.json")
		if err := tee.WriteEvidence(p, ev); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// Another trust root, and a genuine simulated report with DEBUG set.
	otherRoot := t.TempDir()
	if _, err := (&tee.Simulated{Dir: otherRoot}).Quote(context.Background(), [64]byte{}); err != nil {
		t.Fatal(err)
	}
	ev0, _ := tee.ParseEvidence(raw)
	nonceBytes, _ := hex.DecodeString(nonce)
	debugEv, err := tee.Collect(context.Background(), &tee.Simulated{Dir: sim, Debug: true}, tee.CollectOptions{
		Reference: signed, Binding: tee.Binding{ManifestDigest: ev0.Model.Digest, PolicyDigest: ev0.PolicyDigest, Nonce: nonceBytes}})
	if err != nil {
		t.Fatal(err)
	}
	debugFile := filepath.Join(t.TempDir(), "debug.json")
	tee.WriteEvidence(debugFile, debugEv)
	policy2 := filepath.Join(keys, "runtime-policy-2.yaml")
	p1, _ := os.ReadFile(policy)
	os.WriteFile(policy2, append(p1, []byte("# another policy file\n")...), 0o644)

	for _, tc := range []struct {
		name, file, step string
		extra            []string
	}{
		{"another model digest", rewrite(t, func(e *tee.Evidence) { e.Model.Digest = otherDigest }), tee.StepReportData, nil},
		{"another policy digest", evFile, tee.StepPolicyDigest, []string{"--policy", policy2}},
		{"wrong nonce", evFile, tee.StepNonce, []string{"--nonce", "ffff"}},
		{"untrusted root", evFile, tee.StepChain, []string{"--tee-roots", filepath.Join(otherRoot, "roots.pem")}},
		{"debug bit forbidden", debugFile, tee.StepPolicyBits, nil},
		{"measurement not allowed", evFile, tee.StepMeasurement, []string{"--measurement", strings.Repeat("00", 48)}},
		{"one flipped byte", rewrite(t, func(e *tee.Evidence) { e.Report[0x90] ^= 0x01 }), tee.StepSignature, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, code := verify(tc.file, tc.extra...)
			if code != 3 || !strings.Contains(got, "FAIL  "+tc.step+":") || !strings.Contains(got, "Result:   FAIL") {
				t.Fatalf("exit %d, want 3 refused at %q:\n%s", code, tc.step, got)
			}
		})
	}

	// An unsigned model: the verified pull refuses; no evidence, no files.
	out2 := filepath.Join(t.TempDir(), "model2")
	ev2 := filepath.Join(t.TempDir(), "evidence2.json")
	got, code = maCode(t, "runtime", "load", "--plain-http", unsigned, "-o", out2, "--policy", policy, "--nonce", nonce,
		"--evidence", ev2, "--tee", "simulated-snp", "--simulated-root", sim)
	if code != 3 {
		t.Fatalf("unsigned model: exit %d\n%s", code, got)
	}
	for _, p := range []string{out2, ev2} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("%s exists after a refused load (%v)", p, err)
		}
	}
	// Usage errors are exit 2.
	if _, code := verify(evFile, "--nonce", "xyz"); code != 2 {
		t.Fatalf("bad nonce: exit %d", code)
	}
}
