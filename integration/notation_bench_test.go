//go:build unix

package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// BenchmarkVerifyBothKinds verifies, on the embedded registry, a model
// carrying a cosign signature and a Notary Project signature (COSE) under
// "2 of [cosign-release, notation-release]", beside the same model checked
// for its cosign signature alone, in-process and through the CLI; and
// `notation verify` of the Notary Project signature for reference:
//
//	go test -run '^$' -bench VerifyBothKinds -benchtime 20x ./integration/
func BenchmarkVerifyBothKinds(b *testing.B) {
	notation := regtest.Tool(b, "notation")
	ctx := context.Background()
	dir := b.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cosignKey := regtest.WriteKey(b, filepath.Join(dir, "cosign.key"), key)
	der, _ := x509.MarshalPKIXPublicKey(key.Public())
	os.WriteFile(filepath.Join(dir, "cosign.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
	ca := regtest.NewNotaryCA(b, "Acme Root")
	leaf := ca.Leaf(b, notaryRelease, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), "")
	notaryKey := regtest.WriteKey(b, filepath.Join(dir, "notary.key"), leaf.Key)
	chain := regtest.WritePEM(b, filepath.Join(dir, "notary-chain.pem"), leaf.Chain...)
	root := regtest.WritePEM(b, filepath.Join(dir, "root.pem"), ca.Cert)
	policies := map[string]string{
		"cosign-only": "    signatures: {signers: [cosign-release]}\n",
		"both-kinds":  "    signatures: {signers: [cosign-release, notation-release], threshold: 2}\n",
	}
	for name, req := range policies {
		os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(`version: 1
trust:
  cosign-release: {key: cosign.pub}
  notation-release:
    notation: {ca: [root.pem], trustedIdentities: ["x509.subject: CN=ml-release, O=Acme, ST=WA, C=US"]}
models:
  - match: ["**"]
`+req), 0o644)
	}

	host := regtest.Embedded(b, "")
	ref := host + "/models/both:v1"
	// The machine is shared and loaded: beside wall time each case reports
	// the CPU time it used (the process's for in-process, the child's for
	// a CLI), which load does not inflate as much.
	var childCPU time.Duration
	run := func(name string, env []string, args ...string) {
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		childCPU += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	cliCPU := func(b *testing.B) {
		b.ReportMetric(float64(childCPU.Microseconds())/1000/float64(b.N), "cpu-ms/op")
		childCPU = 0
	}
	run(modelattest, nil, "push", "--plain-http", "--no-progress", ref, regtest.ModelDir(b, 1<<20))
	run(modelattest, nil, "sign", "--plain-http", "--key", cosignKey, ref)
	run(modelattest, nil, "sign", "--notation", "--plain-http", "--key", notaryKey, "--certificate-chain", chain, ref)
	tgt, _ := oras.OpenRemote(ctx, ref, oras.RemoteOptions{PlainHTTP: true})
	desc, _ := oras.Resolve(ctx, tgt, "v1")
	digestRef := host + "/models/both@" + desc.Digest.String()

	for _, name := range []string{"cosign-only", "both-kinds"} {
		policy := filepath.Join(dir, name+".yaml")
		p, err := referrers.LoadPolicy(ctx, policy)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name+"/in-process", func(b *testing.B) {
			start := selfCPU()
			for i := 0; i < b.N; i++ {
				rep, err := referrers.VerifyModel(ctx, tgt, tgt.Name, desc, p, referrers.VerifyOptions{})
				if err != nil || !rep.Passed {
					b.Fatal(err)
				}
			}
			// The embedded registry runs in this process too: its share
			// of serving the requests is in this figure.
			b.ReportMetric(float64((selfCPU()-start).Microseconds())/1000/float64(b.N), "cpu-ms/op")
		})
		b.Run(name+"/modelattest-cli", func(b *testing.B) {
			childCPU = 0
			for i := 0; i < b.N; i++ {
				run(modelattest, nil, "verify", "--plain-http", "--policy", policy, digestRef)
			}
			cliCPU(b)
		})
	}

	// notation verify of the same Notary Project signature, for reference.
	home := b.TempDir()
	env := []string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, "config")}
	run(notation, env, "cert", "add", "--type", "ca", "--store", "acme", root)
	tp := filepath.Join(dir, "trustpolicy.json")
	os.WriteFile(tp, []byte(fmt.Sprintf(`{"version": "1.0", "trustPolicies": [{"name": "acme", "registryScopes": ["*"],
	  "signatureVerification": {"level": "strict"}, "trustStores": ["ca:acme"], "trustedIdentities": [%q]}]}`,
		"x509.subject: CN=ml-release, O=Acme, ST=WA, C=US")), 0o644)
	run(notation, env, "policy", "import", "--force", tp)
	b.Run("notation-verify-cli", func(b *testing.B) {
		childCPU = 0
		for i := 0; i < b.N; i++ {
			run(notation, env, "verify", "--insecure-registry", digestRef)
		}
		cliCPU(b)
	})
}
