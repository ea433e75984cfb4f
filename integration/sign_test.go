package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

const provenancePredicate = `{"buildDefinition":{"buildType":"https://acme.example/ml-train/v1",
"externalParameters":{"repo":"https://git.acme.example/ml/train","ref":"refs/heads/main"},
"resolvedDependencies":[{"uri":"s3://acme-datasets/approved/wiki-2026","digest":{"sha256":"` + "abababababababababababababababababababababababababababababababab" + `"}}]},
"runDetails":{"builder":{"id":"https://ci.acme.example/trainer@v2"}}}`

// keyDir makes a key pair with `modelattest keygen` (empty password) and a
// provenance predicate file.
func keyDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("COSIGN_PASSWORD", "")
	ma(t, "keygen", "--output-key-prefix", filepath.Join(dir, "cosign"))
	os.WriteFile(filepath.Join(dir, "provenance.json"), []byte(provenancePredicate), 0o644)
	os.WriteFile(filepath.Join(dir, "trusted_root.json"), []byte(emptyTrustedRoot), 0o644)
	return dir
}

// TestCosignVerifiesOurReferrers: cosign v3.1.3 and v2.6.5
// (--new-bundle-format) accept the signature and the SLSA provenance that
// modelattest made, key-based and offline; oras discover shows them with
// the bundle artifactType and the predicateType annotation.
func TestCosignVerifiesOurReferrers(t *testing.T) {
	oras := regtest.Tool(t, "oras")
	cosigns := map[string][]string{
		"cosign-v3": nil,
		"cosign-v2": {"--new-bundle-format"},
	}
	for name, extra := range cosigns {
		t.Run(name, func(t *testing.T) {
			cosign := regtest.Tool(t, name)
			keys := keyDir(t)
			h := regtest.Embedded(t, "")
			digest := digestOf(t, ma(t, "push", "--plain-http", "--no-progress", h+"/models/tiny:v1", regtest.ModelDir(t, 2048)))
			ref := h + "/models/tiny@" + digest
			ma(t, "sign", "--plain-http", "--key", filepath.Join(keys, "cosign.key"), ref)
			ma(t, "attest", "--plain-http", "--key", filepath.Join(keys, "cosign.key"), "--type", "slsaprovenance1",
				"--predicate", filepath.Join(keys, "provenance.json"), ref)

			common := append([]string{"--key", "cosign.pub", "--insecure-ignore-tlog", "--allow-http-registry",
				"--trusted-root", "trusted_root.json"}, extra...)
			out, err := regtest.RunIn(keys, cosign, append(append([]string{"verify"}, common...), ref)...)
			if err != nil || !strings.Contains(out, digest) {
				t.Fatalf("cosign verify: %v\n%s", err, out)
			}
			out, err = regtest.RunIn(keys, cosign, append(append([]string{"verify-attestation", "--type", "slsaprovenance1"}, common...), ref)...)
			if err != nil || !strings.Contains(attestedPayloads(t, out), "https://ci.acme.example/trainer@v2") {
				t.Fatalf("cosign verify-attestation: %v\n%s", err, out)
			}
			tree := regtest.Run(t, oras, "discover", "--plain-http", "--format", "tree", ref)
			for _, want := range []string{"application/vnd.dev.sigstore.bundle.v0.3+json", "https://sigstore.dev/cosign/sign/v1", "https://slsa.dev/provenance/v1"} {
				if !strings.Contains(tree, want) {
					t.Fatalf("oras discover lacks %s:\n%s", want, tree)
				}
			}
		})
	}
}

// TestWeVerifyCosignsReferrers: the signature and SLSA attestation that
// cosign v3.1.3 (and cosign v2.6.5 with --new-bundle-format) made on our
// model verify with our code.
func TestWeVerifyCosignsReferrers(t *testing.T) {
	for _, name := range []string{"cosign-v3", "cosign-v2"} {
		t.Run(name, func(t *testing.T) {
			cosign := regtest.Tool(t, name)
			keys := cosignEnv(t, cosign)
			os.WriteFile(filepath.Join(keys, "provenance.json"), []byte(provenancePredicate), 0o644)
			h := regtest.Embedded(t, "")
			digest := digestOf(t, ma(t, "push", "--plain-http", "--no-progress", h+"/models/tiny:v1", regtest.ModelDir(t, 2048)))
			ref := h + "/models/tiny@" + digest
			signArgs := []string{"--key", "cosign.key", "--allow-http-registry", "--yes"}
			if name == "cosign-v3" {
				signArgs = append(signArgs, "--signing-config", "signing-config.json")
			} else {
				signArgs = append(signArgs, "--new-bundle-format", "--tlog-upload=false")
			}
			if out, err := regtest.RunIn(keys, cosign, append(append([]string{"sign"}, signArgs...), ref)...); err != nil {
				t.Fatalf("cosign sign: %v\n%s", err, out)
			}
			if out, err := regtest.RunIn(keys, cosign, append(append([]string{"attest", "--type", "slsaprovenance1", "--predicate", "provenance.json"}, signArgs...), ref)...); err != nil {
				t.Fatalf("cosign attest: %v\n%s", err, out)
			}

			ctx := context.Background()
			tgt, err := oras.OpenRemote(ctx, ref, oras.RemoteOptions{PlainHTTP: true})
			if err != nil {
				t.Fatal(err)
			}
			subject, err := oras.Resolve(ctx, tgt, digest)
			if err != nil {
				t.Fatal(err)
			}
			v, err := referrers.LoadKeyVerifier(ctx, "cosign.pub", filepath.Join(keys, "cosign.pub"))
			if err != nil {
				t.Fatal(err)
			}
			for _, pt := range []string{referrers.PredicateCosignSign, referrers.PredicateSLSAProvenance} {
				found, err := referrers.FindBundles(ctx, tgt, subject, pt)
				if err != nil || len(found) != 1 {
					t.Fatalf("%s: found %d, %v", pt, len(found), err)
				}
				st, err := v.Verify(found[0].Bundle, subject.Digest)
				if err != nil {
					t.Fatalf("%s: %v", pt, err)
				}
				if st.PredicateType != pt {
					t.Fatalf("statement predicateType %s, want %s", st.PredicateType, pt)
				}
			}
		})
	}
}

// attestedPayloads decodes the DSSE payloads cosign verify-attestation
// prints, one JSON envelope a line.
func attestedPayloads(t *testing.T, out string) string {
	t.Helper()
	var all strings.Builder
	for _, l := range strings.Split(out, "\n") {
		var env struct {
			Payload []byte `json:"payload"`
		}
		if json.Unmarshal([]byte(strings.TrimSpace(l)), &env) == nil {
			all.Write(env.Payload)
		}
	}
	return all.String()
}

// verifiedPredicate finds the referrer of ref with predicate type pt,
// verifies it with the public key and returns its predicate.
func verifiedPredicate(t *testing.T, ref, pub, pt string) json.RawMessage {
	t.Helper()
	ctx := context.Background()
	tgt, err := oras.OpenRemote(ctx, ref, oras.RemoteOptions{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	subject, err := oras.Resolve(ctx, tgt, tgt.Reference)
	if err != nil {
		t.Fatal(err)
	}
	found, err := referrers.FindBundles(ctx, tgt, subject, pt)
	if err != nil || len(found) == 0 {
		t.Fatalf("no %s referrer: %v", pt, err)
	}
	v, err := referrers.LoadKeyVerifier(ctx, "k", pub)
	if err != nil {
		t.Fatal(err)
	}
	st, err := v.Verify(found[0].Bundle, subject.Digest)
	if err != nil {
		t.Fatal(err)
	}
	return st.Predicate
}

func sha256hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// TestCosignUsesOurKeygen: cosign v3 signs with a private key file that
// `modelattest keygen` wrote, and we verify that signature with the public
// key file it wrote: the files are cosign's format both ways.
func TestCosignUsesOurKeygen(t *testing.T) {
	cosign := regtest.Tool(t, "cosign-v3")
	keys := keyDir(t) // modelattest keygen, empty password
	if out, err := regtest.RunIn(keys, cosign, "signing-config", "create", "--out", "signing-config.json"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	h := regtest.Embedded(t, "")
	digest := digestOf(t, ma(t, "push", "--plain-http", "--no-progress", h+"/models/tiny:v1", regtest.ModelDir(t, 100)))
	ref := h + "/models/tiny@" + digest
	if out, err := regtest.RunIn(keys, cosign, "sign", "--key", "cosign.key", "--signing-config", "signing-config.json",
		"--allow-http-registry", "--yes", ref); err != nil {
		t.Fatalf("cosign sign with our key: %v\n%s", err, out)
	}
	if pred := verifiedPredicate(t, ref, filepath.Join(keys, "cosign.pub"), referrers.PredicateCosignSign); pred == nil {
		t.Fatal("no verified signature")
	}
}
