package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/referrers"
)

const gateID = "https://ci.acme.example/gate"

// keyFiles makes a P-256 key, writes NAME.key (cosign's encrypted format
// is not needed: a PKCS#8 PEM) and NAME.pub into dir, and returns a signer.
func keyFiles(t *testing.T, dir, name string) (*referrers.Signer, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(key.Public())
	os.WriteFile(filepath.Join(dir, name+".pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
	priv, _ := x509.MarshalPKCS8PrivateKey(key)
	os.WriteFile(filepath.Join(dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv}), 0o600)
	s, err := referrers.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	return s, key
}

// withPolicy is the world judged by another policy file.
func (w *world) withPolicy(name, body string) *world {
	c := *w
	c.policy = filepath.Join(w.dir, name)
	if err := os.WriteFile(c.policy, []byte(body), 0o644); err != nil {
		w.t.Fatal(err)
	}
	return &c
}

// policyRefused checks that verify refuses to use the policy (exit 1) with
// a reason containing want, and that a pull under it writes nothing.
func (w *world) policyRefused(t *testing.T, ref, want string) {
	t.Helper()
	out, code := maCode(t, "verify", "--plain-http", "--policy", w.policy, ref)
	if code != 1 || !strings.Contains(out, want) {
		t.Fatalf("verify: exit %d (want 1), output lacks %q:\n%s", code, want, out)
	}
	dst := filepath.Join(t.TempDir(), "pulled")
	if out, code = maCode(t, "pull", "--plain-http", "--no-progress", "--policy", w.policy, "-o", dst, ref); code != 1 || !strings.Contains(out, want) {
		t.Fatalf("pull: exit %d (want 1), output lacks %q:\n%s", code, want, out)
	}
	if entries := regtest.Entries(t, filepath.Dir(dst)); len(entries) != 0 {
		t.Fatalf("a refused pull wrote %v", entries)
	}
}

// TestTamperPolicy runs the policy cases on the embedded registry.
func TestTamperPolicy(t *testing.T) { tamperPolicy(t, newWorld(t, false)) }

// TestTamperPolicyTagSchema runs them on distribution (tag schema).
func TestTamperPolicyTagSchema(t *testing.T) { tamperPolicy(t, newWorld(t, true)) }

// tamperPolicy: a verification summary counts only when PASSED, about this
// digest, by a listed verifier, under an accepted policy and young enough;
// SLSA uriPrefix compares cleaned URLs on segment boundaries; a policy's
// text means one thing.
func tamperPolicy(t *testing.T, w *world) {
	gate, _ := keyFiles(t, w.dir, "gate")
	// The gate's own policies: the one consumers accept, and a weaker one.
	gatePolicy := filepath.Join(w.dir, "gate-policy.yaml")
	os.WriteFile(gatePolicy, []byte("version: 1\ntrust: {release: {key: release.pub}}\nmodels:\n  - match: [\"**\"]\n    signatures: {signers: [release]}\n"), 0o644)
	weakPolicy := filepath.Join(w.dir, "weak-policy.yaml")
	os.WriteFile(weakPolicy, []byte("version: 1\ntrust: {release: {key: release.pub}, stray: {key: stray.pub}}\nmodels:\n  - match: [\"**\"]\n    signatures: {signers: [release, stray]}\n"), 0o644)
	raw, _ := os.ReadFile(gatePolicy)
	accepted := digest.FromBytes(raw)
	c := w.withPolicy("consumer.yaml", fmt.Sprintf(`version: 1
trust:
  release: {key: release.pub}
  gate: {key: gate.pub}
models:
  - match: ["%[1]s/vsa/**"]
    attestations:
      - predicateType: vsa
        signers: [gate]
        vsa: {verifierIDs: [%[2]q], policyDigests: [%[3]q], maxAge: 24h}
  - match: ["%[1]s/prefix/**"]
    attestations:
      - predicateType: slsaprovenance1
        signers: [release]
        slsa:
          dependencies: [{uriPrefix: "s3://acme-datasets/approved"}]
  - match: ["**"]
    reject: true
`, w.host, gateID, accepted))

	// gateVerify runs the gate: verify under policy, sign a summary as id.
	gateVerify := func(t *testing.T, ref, policy, id string) {
		t.Helper()
		out, code := maCode(t, "verify", "--plain-http", "--policy", policy, "--attach-vsa", "--verifier-id", id,
			"--key", filepath.Join(w.dir, "gate.key"), ref)
		if code != 0 && code != 3 || !strings.Contains(out, "Verification summary") {
			t.Fatalf("gate verify: exit %d\n%s", code, out)
		}
	}
	// summary signs a hand-made summary of desc with the gate's key.
	summary := func(t *testing.T, repo string, edit func(v map[string]any)) string {
		t.Helper()
		tgt, desc, ref := w.model(repo)
		w.sign(tgt, desc, w.release)
		v := map[string]any{
			"verifier":           map[string]any{"id": gateID},
			"timeVerified":       time.Now().UTC().Format(time.RFC3339),
			"resourceUri":        "oci://" + w.host + "/" + repo + "@" + desc.Digest.String(),
			"policy":             map[string]any{"digest": map[string]string{"sha256": accepted.Encoded()}},
			"inputAttestations":  []any{},
			"verificationResult": "PASSED",
			"verifiedLevels":     []any{},
			"slsaVersion":        "1.0",
		}
		edit(v)
		pred, _ := json.Marshal(v)
		w.attach(tgt, desc, w.bundleFor(gate, desc.Digest, referrers.PredicateVSA, pred), referrers.PredicateVSA)
		return ref
	}

	t.Run("control: PASSED summary by the gate passes", func(t *testing.T) {
		tgt, desc, ref := w.model("vsa/control")
		w.sign(tgt, desc, w.release)
		gateVerify(t, ref, gatePolicy, gateID)
		c.passes(t, ref)
	})
	t.Run("control: summary naming another repository (a copy) passes", func(t *testing.T) {
		ref := summary(t, "vsa/copied", func(v map[string]any) {
			v["resourceUri"] = "oci://airgap.example/mirror/model@" + strings.SplitN(v["resourceUri"].(string), "@", 2)[1]
		})
		c.passes(t, ref)
	})
	t.Run("FAILED summary", func(t *testing.T) {
		_, _, ref := w.model("vsa/failed") // unsigned: the gate records FAILED
		gateVerify(t, ref, gatePolicy, gateID)
		c.refused(t, ref, `verification result is "FAILED", want PASSED`)
	})
	t.Run("summary by an unlisted verifier id", func(t *testing.T) {
		tgt, desc, ref := w.model("vsa/verifier")
		w.sign(tgt, desc, w.release)
		gateVerify(t, ref, gatePolicy, "https://laptop.example/me")
		c.refused(t, ref, `verifier id "https://laptop.example/me" is not one of "`+gateID+`"`)
	})
	t.Run("summary under a weaker policy", func(t *testing.T) {
		tgt, desc, ref := w.model("vsa/weak") // signed by a key only the weak policy trusts
		w.sign(tgt, desc, w.stray)
		gateVerify(t, ref, weakPolicy, gateID)
		c.refused(t, ref, "is not one of the accepted "+accepted.String())
	})
	t.Run("summary older than maxAge", func(t *testing.T) {
		ref := summary(t, "vsa/old", func(v map[string]any) {
			v["timeVerified"] = time.Now().Add(-48 * time.Hour).UTC().Format(time.RFC3339)
		})
		c.refused(t, ref, "more than 24h ago")
	})
	t.Run("summary whose resourceUri names another digest", func(t *testing.T) {
		ref := summary(t, "vsa/otherdigest", func(v map[string]any) {
			v["resourceUri"] = "oci://" + w.host + "/vsa/otherdigest@" + digest.FromString("another model").String()
		})
		c.refused(t, ref, "does not name the model's digest")
	})
	t.Run("vsa rule without its vsa block does not load", func(t *testing.T) {
		_, _, ref := w.model("vsa/noblock")
		nb := w.withPolicy("noblock.yaml", "version: 1\ntrust: {gate: {key: gate.pub}}\nmodels:\n  - match: [\"**\"]\n    attestations:\n      - predicateType: vsa\n        signers: [gate]\n")
		nb.policyRefused(t, ref, "needs a vsa block")
	})

	prov := func(t *testing.T, repo, dataset string) string {
		t.Helper()
		tgt, desc, ref := w.model(repo)
		w.attest(tgt, desc, w.release, provenance(t, goodBuilder, dataset))
		return ref
	}
	t.Run("control: dataset under the prefix passes", func(t *testing.T) {
		c.passes(t, prov(t, "prefix/control", "s3://acme-datasets/approved/wiki-2026"))
	})
	t.Run("dataset outside the prefix through ..", func(t *testing.T) {
		c.refused(t, prov(t, "prefix/dotdot", "s3://acme-datasets/approved/../poisoned/x.parquet"), `has a dot segment ".."`)
	})
	t.Run("dataset outside the prefix through %2e%2e", func(t *testing.T) {
		c.refused(t, prov(t, "prefix/encoded", "s3://acme-datasets/approved/%2e%2e/poisoned/x.parquet"), `has a dot segment ".."`)
	})
	t.Run("dataset in a sibling folder sharing the prefix's text", func(t *testing.T) {
		c.refused(t, prov(t, "prefix/sibling", "s3://acme-datasets/approved-evil/x.parquet"), "no resolved dependency s3://acme-datasets/approved…")
	})

	t.Run("trusted key, wrong builder: the Error line blames the rule", func(t *testing.T) {
		tgt, desc, ref := w.model("models/blame")
		w.sign(tgt, desc, w.release)
		w.oms(tgt, desc, w.release)
		w.attest(tgt, desc, w.release, provenance(t, "https://laptop.example/me", goodDataset))
		out, code := maCode(t, "verify", "--plain-http", "--policy", w.policy, ref)
		var errLines []string
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "Error:") {
				errLines = append(errLines, l)
			}
		}
		want := `attestation https://slsa.dev/provenance/v1: signed by a trusted signer (release), but does not meet the rule: builder id "https://laptop.example/me" is not one of "` + goodBuilder + `"`
		if code != 3 || len(errLines) != 1 || !strings.Contains(errLines[0], want) || strings.ContainsAny(errLines[0], "[]") || strings.Contains(errLines[0], "of 1 required") {
			t.Fatalf("exit %d, want 3 and one Error line with %q:\n%s", code, want, out)
		}
	})

	// The policy text: keys matched byte for byte, no duplicates, no
	// slsaprovenance alias. Each policy below loaded on the old code, and
	// the first two let a laptop build pass a rule written for CI.
	laptop := func(t *testing.T, repo string) string {
		t.Helper()
		tgt, desc, ref := w.model(repo)
		w.attest(tgt, desc, w.release, provenance(t, "https://laptop.example/me", goodDataset))
		return ref
	}
	text := func(slsa string) string {
		return "version: 1\ntrust: {release: {key: release.pub}}\nmodels:\n  - match: [\"**\"]\n    attestations:\n      - predicateType: slsaprovenance1\n        signers: [release]\n        slsa:\n" + slsa
	}
	t.Run("policy key in another case", func(t *testing.T) {
		p := w.withPolicy("case.yaml", text("          builderIDs: [\""+goodBuilder+"\"]\n          builderids: [\"https://laptop.example/me\"]\n"))
		p.policyRefused(t, laptop(t, "text/case"), `unknown key "builderids" (keys are case-sensitive: write "builderIDs")`)
	})
	t.Run("policy key written twice", func(t *testing.T) {
		p := w.withPolicy("dup.yaml", text("          builderIDs: [\""+goodBuilder+"\"]\n          builderIDs: [\"https://laptop.example/me\"]\n"))
		p.policyRefused(t, laptop(t, "text/dup"), `key "builderIDs" appears twice`)
	})
	t.Run("slsaprovenance alias", func(t *testing.T) {
		p := w.withPolicy("alias.yaml", strings.Replace(text("          builderIDs: [\""+goodBuilder+"\"]\n"), "slsaprovenance1", "slsaprovenance", 1))
		p.policyRefused(t, laptop(t, "text/alias"), "write slsaprovenance1")
	})
}
