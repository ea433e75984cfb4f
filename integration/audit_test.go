package integration

import (
	"context"
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

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// auditWorld is a repository holding the audit acceptance cases.
type auditWorld struct {
	host, repo, dir, policy, auditKey, auditPub string
	release, other                              *referrers.Signer
	digests                                     map[string]string // tag → digest
}

func newSigner(t testing.TB, dir, name string) (*referrers.Signer, string, string) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, err := referrers.NewSigner(k)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	pub, _ := x509.MarshalPKIXPublicKey(k.Public())
	priv, pubFile := filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
	os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644)
	return s, priv, pubFile
}

// newAuditWorld pushes, in host/models/zoo: good and good-alias (one
// digest, signed and attested), unsigned, untrusted (signed and attested
// by a key the policy does not trust) and moved (signed and attested, then
// moved to an unsigned model).
func newAuditWorld(t *testing.T, host string) *auditWorld {
	t.Helper()
	ctx := context.Background()
	w := &auditWorld{host: host, repo: host + "/models/zoo", dir: t.TempDir(), digests: map[string]string{}}
	w.release, _, _ = newSigner(t, w.dir, "release")
	w.other, _, _ = newSigner(t, w.dir, "other")
	_, w.auditKey, w.auditPub = newSigner(t, w.dir, "auditor")
	w.policy = filepath.Join(w.dir, "policy.yaml")
	os.WriteFile(w.policy, []byte(`version: 1
trust:
  release: {key: release.pub}
models:
  - match: ["**"]
    signatures: {signers: [release]}
    attestations:
      - predicateType: https://slsa.dev/provenance/v1
        signers: [release]
        slsa: {builderIDs: ["https://ci.acme.example/trainer@v2"], dependencies: [{uriPrefix: "s3://acme-datasets/approved/"}]}
`), 0o644)
	tgt, err := oras.OpenRemote(ctx, w.repo, oras.RemoteOptions{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	pred := provenance(t, "https://ci.acme.example/trainer@v2", "s3://acme-datasets/approved/wiki-2026")
	push := func(tag string, size int) ocispec.Descriptor {
		d, err := oras.Push(ctx, tgt, tag, regtest.ModelDir(t, size), oras.PushOptions{})
		if err != nil {
			t.Fatal(err)
		}
		w.digests[tag] = d.Digest.String()
		return d
	}
	attest := func(d ocispec.Descriptor, s *referrers.Signer) {
		if _, err := referrers.Sign(ctx, tgt, d, s, referrers.AttachOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := referrers.Attest(ctx, tgt, d, s, referrers.PredicateSLSAProvenance, pred, referrers.AttachOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	good := push("good", 1000)
	attest(good, w.release)
	if err := tgt.Tag(ctx, good, "good-alias"); err != nil {
		t.Fatal(err)
	}
	w.digests["good-alias"] = good.Digest.String()
	push("unsigned", 1100)
	attest(push("untrusted", 1200), w.other)
	attest(push("moved", 1300), w.release)
	push("moved", 1400) // the tag moves to an unsigned model
	return w
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// auditModel is the part of report.json the tests read.
type auditModel struct {
	Repository, Digest, Verdict string
	Tags, Signers, Builders     []string
	Datasets                    []string
	Requirements                []struct{ What, Outcome, Reason string }
	Controls                    []struct{ ID, Status string }
	VSA                         string
}

func readReport(t *testing.T, dir string) (map[string]any, []auditModel) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	schema := regtest.CompileSchema(t, "audit/report.schema.json")
	inst, _ := jsonschema.UnmarshalJSON(strings.NewReader(string(raw)))
	if err := schema.Validate(inst); err != nil {
		t.Fatalf("report.json does not match audit/report.schema.json: %v", err)
	}
	var rep map[string]any
	var models struct{ Models []auditModel }
	json.Unmarshal(raw, &rep)
	json.Unmarshal(raw, &models)
	return rep, models.Models
}

// TestAuditVerdictPerTag: on the embedded registry (Referrers API) and on
// distribution (tag schema, whose sha256- fallback tags are not models),
// audit gives each tag its verdict — signed+attested passes; unsigned,
// signed by an untrusted key, and a tag moved after signing fail — and two
// tags on one digest are one model verified once. Exit 3. The folder holds
// a schema-valid report.json, events.jsonl (one schema-valid event per
// model, correlated by the run id), report.md, report.html with one row and
// one SVG per model, the policy and its digest; with --key, SHA256SUMS
// signed as a bundle that cosign v3 verify-blob accepts, and a signed VSA
// per model; --controls soc2 maps the requirements.
func TestAuditVerdictPerTag(t *testing.T) {
	for name, start := range map[string]func(t *testing.T) string{
		"embedded":     func(t *testing.T) string { return regtest.Embedded(t, "") },
		"distribution": func(t *testing.T) string { return regtest.Distribution(t, "") },
	} {
		t.Run(name, func(t *testing.T) {
			w := newAuditWorld(t, start(t))
			out := filepath.Join(t.TempDir(), "evidence")
			res, code := maCode(t, "audit", "--plain-http", "--policy", w.policy, "--output", out, "--controls", "soc2", "--key", w.auditKey, w.repo)
			if code != 3 {
				t.Fatalf("audit: exit %d, want 3\n%s", code, res)
			}
			rep, models := readReport(t, out)
			want := map[string]string{"good": "pass", "good-alias": "pass", "unsigned": "fail", "untrusted": "fail", "moved": "fail"}
			got := map[string]string{}
			for _, m := range models {
				for _, tag := range m.Tags {
					got[tag] = m.Verdict
					if m.Digest != w.digests[tag] {
						t.Errorf("%s: digest %s, want %s", tag, m.Digest, w.digests[tag])
					}
				}
				switch {
				case m.Verdict == "pass":
					if strings.Join(m.Tags, ",") != "good,good-alias" || strings.Join(m.Signers, ",") != "release" ||
						strings.Join(m.Builders, ",") != "https://ci.acme.example/trainer@v2" || len(m.Datasets) != 1 {
						t.Errorf("passing model: %+v", m)
					}
				case m.Tags[0] == "untrusted":
					if !strings.Contains(m.Requirements[0].Reason, "untrusted") && !strings.Contains(m.Requirements[0].Reason, "trusted") {
						t.Errorf("untrusted: %+v", m.Requirements)
					}
				}
				if len(m.Controls) == 0 || m.Controls[0].ID != "CC8.1" || (m.Verdict == "pass") != (m.Controls[0].Status == "satisfied") {
					t.Errorf("%v: controls %+v", m.Tags, m.Controls)
				}
				if m.VSA == "" {
					t.Errorf("%v: no signed VSA", m.Tags)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) || len(models) != 4 {
				t.Fatalf("verdicts %v (%d models), want %v\n%s", got, len(models), want, res)
			}
			if s := rep["summary"].(map[string]any); s["tags"] != 5.0 || s["passed"] != 1.0 || s["failed"] != 3.0 {
				t.Errorf("summary %v", s)
			}
			evs := regtest.DecisionEvents(t, readFile(t, filepath.Join(out, "events.jsonl")))
			if len(evs) != 4 {
				t.Fatalf("%d events, want one per model", len(evs))
			}
			for _, e := range evs {
				d := e["data"].(map[string]any)
				if d["unmapped"].(map[string]any)["face"] != "audit" || d["metadata"].(map[string]any)["correlation_uid"] != rep["runId"] {
					t.Errorf("event %v", d["unmapped"])
				}
			}
			html := string(readFile(t, filepath.Join(out, "report.html")))
			if strings.Count(html, `<tr class="model `) != 4 || strings.Count(html, "<svg ") != 4 || strings.Contains(html, "<script") {
				t.Errorf("report.html: %d rows, %d graphs", strings.Count(html, `<tr class="model `), strings.Count(html, "<svg "))
			}
			if p := string(readFile(t, filepath.Join(out, "policy.sha256"))); !strings.HasPrefix(p, rep["policyDigest"].(string)+"  policy.yaml") {
				t.Errorf("policy.sha256: %s", p)
			}
			for _, f := range []string{"report.md", "policy.yaml", "report.schema.json"} {
				if _, err := os.Stat(filepath.Join(out, f)); err != nil {
					t.Error(err)
				}
			}
			// The evidence is tamper-evident: cosign verifies the bundle over
			// SHA256SUMS, and SHA256SUMS names every file's hash.
			cosign := regtest.Tool(t, "cosign-v3")
			if o, err := regtest.RunIn(out, cosign, "verify-blob", "--key", w.auditPub, "--bundle", "SHA256SUMS.sigstore.json",
				"--insecure-ignore-tlog", "--private-infrastructure", "SHA256SUMS"); err != nil {
				t.Fatalf("cosign verify-blob: %v\n%s", err, o)
			}
			os.WriteFile(filepath.Join(out, "SHA256SUMS"), append(readFile(t, filepath.Join(out, "SHA256SUMS")), "0000  extra\n"...), 0o644)
			if o, err := regtest.RunIn(out, cosign, "verify-blob", "--key", w.auditPub, "--bundle", "SHA256SUMS.sigstore.json",
				"--insecure-ignore-tlog", "--private-infrastructure", "SHA256SUMS"); err == nil {
				t.Fatalf("cosign accepted a changed SHA256SUMS\n%s", o)
			}
			// The same folder is never written twice.
			if res, code := maCode(t, "audit", "--plain-http", "--policy", w.policy, "--output", out, w.repo); code != 1 || !strings.Contains(res, "not empty") {
				t.Errorf("audit into a full folder: exit %d\n%s", code, res)
			}
		})
	}
}
