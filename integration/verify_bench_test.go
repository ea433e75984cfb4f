package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// BenchmarkVerify verifies a model's signature, SLSA provenance and
// model-signing statement on the embedded registry, three ways side by
// side: in-process (library), the modelattest CLI, and cosign v3
// (verify + verify-attestation, which check the signature and the
// provenance only):
//
//	go test -run '^$' -bench Verify -benchtime 20x ./integration/
func BenchmarkVerify(b *testing.B) {
	cosign := regtest.Tool(b, "cosign-v3")
	keys := b.TempDir()
	b.Setenv("COSIGN_PASSWORD", "")
	if out, err := exec.Command(modelattest, "keygen", "--output-key-prefix", filepath.Join(keys, "cosign")).CombinedOutput(); err != nil {
		b.Fatalf("%v\n%s", err, out)
	}
	os.WriteFile(filepath.Join(keys, "provenance.json"), []byte(provenancePredicate), 0o644)
	os.WriteFile(filepath.Join(keys, "trusted_root.json"), []byte(emptyTrustedRoot), 0o644)
	policy := writeKeyPolicy(b, keys, true)
	host := regtest.Embedded(b, "")
	ref := host + "/models/tiny:v1"
	run := func(name string, args ...string) {
		cmd := exec.Command(name, args...)
		cmd.Dir = keys
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	run(modelattest, "push", "--plain-http", "--no-progress", ref, regtest.ModelDir(b, 1<<20))
	key := filepath.Join(keys, "cosign.key")
	run(modelattest, "sign", "--plain-http", "--key", key, ref)
	run(modelattest, "attest", "--plain-http", "--key", key, "--type", "slsaprovenance1", "--predicate", filepath.Join(keys, "provenance.json"), ref)
	run(modelattest, "attest", "--plain-http", "--key", key, "--type", "model-signing", ref)

	ctx := context.Background()
	tgt, _ := oras.OpenRemote(ctx, ref, oras.RemoteOptions{PlainHTTP: true})
	desc, _ := oras.Resolve(ctx, tgt, "v1")
	digestRef := host + "/models/tiny@" + desc.Digest.String()
	p, err := referrers.LoadPolicy(ctx, policy)
	if err != nil {
		b.Fatal(err)
	}

	b.Run("in-process", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			rep, err := referrers.VerifyModel(ctx, tgt, tgt.Name, desc, p, referrers.VerifyOptions{})
			if err != nil || !rep.Passed {
				b.Fatal(err)
			}
		}
	})
	b.Run("modelattest-cli", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			run(modelattest, "verify", "--plain-http", "--policy", policy, digestRef)
		}
	})
	b.Run("cosign-verify+verify-attestation", func(b *testing.B) {
		common := []string{"--key", "cosign.pub", "--insecure-ignore-tlog", "--trusted-root", "trusted_root.json", "--allow-http-registry"}
		for i := 0; i < b.N; i++ {
			run(cosign, append(append([]string{"verify"}, common...), digestRef)...)
			run(cosign, append(append([]string{"verify-attestation", "--type", "slsaprovenance1"}, common...), digestRef)...)
		}
	})
}

// BenchmarkVerifiedPull pulls a big model with and without the policy check
// first, side by side, from the embedded registry.
//
//	go test -run '^$' -bench VerifiedPull -benchtime 3x ./integration/
func BenchmarkVerifiedPull(b *testing.B) {
	size := int64(2 << 30)
	if s := os.Getenv("MODELATTEST_BENCH_BIG"); s != "" {
		size = parseSize(s)
	}
	keys := b.TempDir()
	b.Setenv("COSIGN_PASSWORD", "")
	exec.Command(modelattest, "keygen", "--output-key-prefix", filepath.Join(keys, "cosign")).Run()
	policy := filepath.Join(keys, "policy.yaml")
	os.WriteFile(policy, []byte("version: 1\ntrust:\n  release: {key: cosign.pub}\nmodels:\n  - match: [\"**\"]\n    signatures: {signers: [release]}\n    attestations:\n      - predicateType: model-signing\n        signers: [release]\n"), 0o644)
	src := benchDir(b)
	writeBenchFiles(b, src, map[string]int64{"model.safetensors": size})
	host := regtest.DistributionAt(b, benchDir(b), "")
	ref := host + "/bench/model:v1"
	runMeasured(b, src, modelattest, "push", "--plain-http", "--no-progress", ref, src)
	runMeasured(b, src, modelattest, "sign", "--plain-http", "--key", filepath.Join(keys, "cosign.key"), ref)
	runMeasured(b, src, modelattest, "attest", "--plain-http", "--key", filepath.Join(keys, "cosign.key"), "--type", "model-signing", ref)
	for _, mode := range []string{"unverified", "verified"} {
		b.Run(mode, func(b *testing.B) {
			var took time.Duration
			for i := 0; i < b.N; i++ {
				out := filepath.Join(benchDir(b), "out")
				args := []string{"pull", "--plain-http", "--no-progress", "-o", out, ref}
				if mode == "verified" {
					args = append(args, "--policy", policy)
				} else {
					args = append(args, "--insecure-skip-verify")
				}
				d, _ := runMeasured(b, src, modelattest, args...)
				took += d
				b.StopTimer()
				os.RemoveAll(out)
				b.StartTimer()
			}
			b.ReportMetric(float64(size)*float64(b.N)/took.Seconds()/1e6, "MB/s")
		})
	}
}
