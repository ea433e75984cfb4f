package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sync/errgroup"

	"github.com/modelattest/modelattest/audit"
	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// signedRepo pushes n distinct one-file models to host/models/scale, each
// signed and attested (SLSA provenance) by release, tagged v0000…; it
// returns the repository and the policy that passes them.
func signedRepo(tb testing.TB, host string, n int) (string, *referrers.Policy) {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	release, _, _ := newSigner(tb, dir, "release")
	policy := filepath.Join(dir, "policy.yaml")
	os.WriteFile(policy, []byte(`version: 1
trust:
  release: {key: release.pub}
models:
  - match: ["**"]
    signatures: {signers: [release]}
    attestations:
      - predicateType: https://slsa.dev/provenance/v1
        signers: [release]
        slsa: {builderIDs: ["https://ci.acme.example/trainer@v2"]}
`), 0o644)
	repo := host + "/models/scale"
	tgt, err := oras.OpenRemote(ctx, repo, oras.RemoteOptions{PlainHTTP: true})
	if err != nil {
		tb.Fatal(err)
	}
	pred, _ := referrers.Provenance{BuilderID: "https://ci.acme.example/trainer@v2", BuildType: "https://acme.example/ml-train/v1",
		ExternalParameters: map[string]any{"recipe": "train.yaml"}}.Predicate()
	var g errgroup.Group
	g.SetLimit(8)
	for i := range n {
		g.Go(func() error {
			md := filepath.Join(dir, fmt.Sprintf("m%04d", i))
			os.MkdirAll(md, 0o755)
			os.WriteFile(filepath.Join(md, "model.safetensors"), []byte(fmt.Sprintf("weights %d", i)), 0o644)
			d, err := oras.Push(ctx, tgt, fmt.Sprintf("v%04d", i), md, oras.PushOptions{})
			if err != nil {
				return err
			}
			if _, err := referrers.Sign(ctx, tgt, d, release, referrers.AttachOptions{}); err != nil {
				return err
			}
			_, err = referrers.Attest(ctx, tgt, d, release, referrers.PredicateSLSAProvenance, pred, referrers.AttachOptions{})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		tb.Fatal(err)
	}
	p, err := referrers.LoadPolicy(ctx, policy)
	if err != nil {
		tb.Fatal(err)
	}
	return repo, p
}

// TestAuditRequestsPerTag: the registry requests an audit makes grow with
// the tags, at a fixed number per signed and attested tag (stated in
// docs/PERFORMANCE.md): 8 tags and 16 tags cost the same per tag, within
// the one tag listing.
func TestAuditRequestsPerTag(t *testing.T) {
	ctx := context.Background()
	per := map[int]float64{}
	for _, n := range []int{8, 16} {
		repo, p := signedRepo(t, regtest.Embedded(t, ""), n)
		rep, err := audit.Run(ctx, []string{repo}, audit.Options{Policy: p, Remote: oras.RemoteOptions{PlainHTTP: true}})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Summary.Passed != n || rep.Summary.Tags != n {
			t.Fatalf("%d tags: %+v %+v", n, rep.Summary, rep.Problems)
		}
		per[n] = float64(rep.Requests-1) / float64(n) // one tag listing per repository
		t.Logf("%d tags: %d requests, %.2f per tag", n, rep.Requests, per[n])
	}
	if per[8] != per[16] || per[16] > 12 {
		t.Errorf("requests per tag %v: want the same fixed count (≤ 12) at any size", per)
	}
}

// BenchmarkAudit1000Tags: audit of one repository with 1,000 tags on
// 1,000 distinct signed and attested digests on the embedded registry
// (setup not timed). Reports registry requests per tag.
func BenchmarkAudit1000Tags(b *testing.B) {
	ctx := context.Background()
	repo, p := signedRepo(b, regtest.Embedded(b, ""), 1000)
	b.ResetTimer()
	for b.Loop() {
		before := selfCPU()
		rep, err := audit.Run(ctx, []string{repo}, audit.Options{Policy: p, Remote: oras.RemoteOptions{PlainHTTP: true}, Concurrency: 8})
		if err != nil {
			b.Fatal(err)
		}
		if rep.Summary.Passed != 1000 {
			b.Fatalf("%+v", rep.Summary)
		}
		b.ReportMetric(float64(rep.Requests)/1000, "requests/tag")
		// CPU of this process: the audit and the embedded registry serving it.
		cpu := selfCPU() - before
		b.ReportMetric(cpu.Seconds(), "cpu-s/op")
	}
}
