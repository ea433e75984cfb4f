package integration

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	orasgo "oras.land/oras-go/v2"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// world is one real registry (the embedded one) behind a proxy that can
// lie, a set of keys, a company PKI, a keyless service, and a policy file.
type world struct {
	t       *testing.T
	ctx     context.Context
	proxy   *regtest.Proxy
	host    string
	dir     string
	policy  string
	release *referrers.Signer // trusted for models/**
	qa      *referrers.Signer // trusted with release for dual/**
	stray   *referrers.Signer // trusted by nobody
	pki     *testPKI
	sig     *regtest.Sigstore
	// tagSchema: the registry has no Referrers API (referrers live in a
	// sha256-<hex> tag index).
	tagSchema bool
}

const (
	goodBuilder = "https://ci.acme.example/trainer@v2"
	goodDataset = "s3://acme-datasets/approved/wiki-2026"
)

func newWorld(t *testing.T, tagSchema bool) *world {
	t.Helper()
	w := &world{t: t, ctx: context.Background(), dir: t.TempDir(), tagSchema: tagSchema}
	if tagSchema {
		w.proxy = regtest.NewProxy(t, regtest.Distribution(t, ""))
	} else {
		w.proxy = regtest.NewProxy(t, regtest.Embedded(t, ""))
	}
	w.host = w.proxy.Host
	signer := func(name string) *referrers.Signer {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		der, _ := x509.MarshalPKIXPublicKey(key.Public())
		os.WriteFile(filepath.Join(w.dir, name+".pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
		s, err := referrers.NewSigner(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	w.release, w.qa, w.stray = signer("release"), signer("qa"), signer("stray")
	w.pki = newTestPKI(t)
	os.WriteFile(filepath.Join(w.dir, "corp-root.pem"), w.pki.rootPEM, 0o644)
	w.sig = regtest.NewSigstore(t)
	os.WriteFile(filepath.Join(w.dir, "trusted_root.json"), w.sig.TrustedRootJSON, 0o644)
	w.policy = filepath.Join(w.dir, "policy.yaml")
	os.WriteFile(w.policy, []byte(fmt.Sprintf(`version: 1
trust:
  release: {key: release.pub}
  qa: {key: qa.pub}
  corp:
    x509: {roots: corp-root.pem, subject: "CN=ml-release,O=Acme"}
  ci:
    keyless: {issuer: %q, subject: %q, trustedRoot: trusted_root.json}
models:
  - match: ["%[3]s/models/**"]
    signatures: {signers: [release]}
    attestations:
      - predicateType: slsaprovenance1
        signers: [release]
        slsa:
          builderIDs: [%q]
          dependencies: [{uriPrefix: "s3://acme-datasets/approved/"}]
      - predicateType: model-signing
        signers: [release]
  - match: ["%[3]s/dual/**"]
    signatures: {signers: [release, qa], threshold: 2}
  - match: ["%[3]s/pki/**"]
    signatures: {signers: [corp]}
  - match: ["%[3]s/keyless/**"]
    signatures: {signers: [ci]}
  - match: ["**"]
    reject: true
`, regtest.TestIssuer, regtest.TestIdentity, w.host, goodBuilder)), 0o644)
	return w
}

func (w *world) target(repo string) *oras.Target {
	tgt, err := oras.OpenRemote(w.ctx, w.host+"/"+repo, oras.RemoteOptions{PlainHTTP: true})
	if err != nil {
		w.t.Fatal(err)
	}
	return tgt
}

// model pushes a new model to repo:v1.
func (w *world) model(repo string) (*oras.Target, ocispec.Descriptor, string) {
	tgt := w.target(repo)
	desc, err := oras.Push(w.ctx, tgt, "v1", regtest.ModelDir(w.t, 64<<10), oras.PushOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	return tgt, desc, w.host + "/" + repo + ":v1"
}

func provenance(t *testing.T, builder, dataset string) json.RawMessage {
	t.Helper()
	p, err := referrers.Provenance{BuilderID: builder, BuildType: "https://acme.example/ml-train/v1",
		ExternalParameters: map[string]any{"recipe": "train.yaml"},
		Dependencies:       []referrers.Dependency{{URI: dataset, Digest: map[string]string{"sha256": strings.Repeat("ab", 32)}}},
	}.Predicate()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (w *world) sign(tgt orasgo.Target, desc ocispec.Descriptor, s *referrers.Signer) ocispec.Descriptor {
	d, err := referrers.Sign(w.ctx, tgt, desc, s, referrers.AttachOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	return d
}

func (w *world) attest(tgt orasgo.Target, desc ocispec.Descriptor, s *referrers.Signer, pred json.RawMessage) {
	if _, err := referrers.Attest(w.ctx, tgt, desc, s, referrers.PredicateSLSAProvenance, pred, referrers.AttachOptions{}); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) oms(tgt orasgo.Target, desc ocispec.Descriptor, s *referrers.Signer) {
	if _, err := referrers.AttestModelSigning(w.ctx, tgt, desc, s, "tiny", referrers.AttachOptions{}); err != nil {
		w.t.Fatal(err)
	}
}

// fullySigned gives a model everything the models/** rule requires.
func (w *world) fullySigned(tgt orasgo.Target, desc ocispec.Descriptor) {
	w.sign(tgt, desc, w.release)
	w.attest(tgt, desc, w.release, provenance(w.t, goodBuilder, goodDataset))
	w.oms(tgt, desc, w.release)
}

// bundleFor signs an arbitrary statement with s.
func (w *world) bundleFor(s *referrers.Signer, subject digest.Digest, pt string, pred json.RawMessage) []byte {
	st, err := referrers.NewStatement(subject, "", pt, pred)
	if err != nil {
		w.t.Fatal(err)
	}
	b, err := s.SignStatement(w.ctx, st)
	if err != nil {
		w.t.Fatal(err)
	}
	return b
}

func (w *world) attach(tgt orasgo.Target, subject ocispec.Descriptor, bundle []byte, pt string) ocispec.Descriptor {
	d, err := referrers.Attach(w.ctx, tgt, subject, bundle, pt, referrers.AttachOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	return d
}

// refused checks that verify and verified pull both refuse ref with exit 3
// and a reason containing want, and that the pull wrote nothing.
func (w *world) refused(t *testing.T, ref, want string) {
	t.Helper()
	out, code := maCode(t, "verify", "--plain-http", "--policy", w.policy, ref)
	if code != 3 || !strings.Contains(out, want) {
		t.Fatalf("verify: exit %d (want 3), output lacks %q:\n%s", code, want, out)
	}
	dst := filepath.Join(t.TempDir(), "pulled")
	out, code = maCode(t, "pull", "--plain-http", "--no-progress", "--policy", w.policy, "-o", dst, ref)
	if code != 3 || !strings.Contains(out, want) {
		t.Fatalf("pull: exit %d (want 3), output lacks %q:\n%s", code, want, out)
	}
	if entries := regtest.Entries(t, filepath.Dir(dst)); len(entries) != 0 {
		t.Fatalf("a refused pull wrote %v", entries)
	}
}

// passes checks that verify accepts ref and a verified pull lands the files.
func (w *world) passes(t *testing.T, ref string) {
	t.Helper()
	if out, code := maCode(t, "verify", "--plain-http", "--policy", w.policy, ref); code != 0 {
		t.Fatalf("verify: exit %d\n%s", code, out)
	}
	dst := filepath.Join(t.TempDir(), "pulled")
	if out, code := maCode(t, "pull", "--plain-http", "--no-progress", "--policy", w.policy, "-o", dst, ref); code != 0 {
		t.Fatalf("pull: exit %d\n%s", code, out)
	}
}

// rewriteReferrers makes the registry's referrers listing of subject say
// something else.
func (w *world) rewriteReferrers(subject digest.Digest, edit func(idx *ocispec.Index)) {
	listing := "/referrers/" + subject.String()
	if w.tagSchema {
		listing = "/manifests/" + subject.Algorithm().String() + "-" + subject.Encoded()
	}
	w.proxy.SetTamper(func(r *http.Request, body []byte) []byte {
		if !strings.HasSuffix(r.URL.Path, listing) {
			return body
		}
		var idx ocispec.Index
		if json.Unmarshal(body, &idx) != nil {
			return body
		}
		edit(&idx)
		b, _ := json.Marshal(idx)
		return b
	})
}

// TestTamperMatrix runs every case on the embedded registry (Referrers API).
func TestTamperMatrix(t *testing.T) { tamperMatrix(t, newWorld(t, false)) }

// TestTamperMatrixTagSchema runs them again on the CNCF distribution
// registry, where referrers live in sha256-<hex> tag indexes.
func TestTamperMatrixTagSchema(t *testing.T) { tamperMatrix(t, newWorld(t, true)) }

func tamperMatrix(t *testing.T, w *world) {

	t.Run("control: fully signed model passes", func(t *testing.T) {
		tgt, desc, ref := w.model("models/control")
		w.fullySigned(tgt, desc)
		w.passes(t, ref)
	})
	t.Run("re-tagged model", func(t *testing.T) {
		tgt, desc, ref := w.model("models/retag")
		w.fullySigned(tgt, desc)
		w.model("models/retag") // another, unsigned model pushed over v1
		w.refused(t, ref, "signatures: 0 of 1")
	})
	t.Run("swapped layer blob", func(t *testing.T) {
		tgt, desc, ref := w.model("models/swapblob")
		w.fullySigned(tgt, desc)
		m, _, _ := oras.FetchManifest(w.ctx, tgt, desc)
		weights := m.Layers[len(m.Layers)-3].Digest // model.safetensors
		w.proxy.SetTamper(func(r *http.Request, b []byte) []byte {
			if strings.HasSuffix(r.URL.Path, "/blobs/"+weights.String()) {
				b = bytes.Clone(b)
				b[0] ^= 1
			}
			return b
		})
		defer w.proxy.SetTamper(nil)
		if out, code := maCode(t, "verify", "--plain-http", "--policy", w.policy, ref); code != 0 {
			t.Fatalf("the signatures are intact, verify should pass: %d\n%s", code, out)
		}
		dst := filepath.Join(t.TempDir(), "pulled")
		out, code := maCode(t, "pull", "--plain-http", "--no-progress", "--policy", w.policy, "-o", dst, ref)
		if code != 3 || !strings.Contains(out, "integrity check failed") {
			t.Fatalf("pull: exit %d\n%s", code, out)
		}
		if _, err := os.Stat(dst); !os.IsNotExist(err) {
			t.Fatal("a tampered pull created the output directory")
		}
	})
	t.Run("swapped config", func(t *testing.T) {
		tgt, desc, ref := w.model("models/swapconfig")
		w.fullySigned(tgt, desc)
		m, _, _ := oras.FetchManifest(w.ctx, tgt, desc)
		w.proxy.SetTamper(func(r *http.Request, b []byte) []byte {
			if strings.HasSuffix(r.URL.Path, "/blobs/"+m.Config.Digest.String()) {
				return bytes.Replace(b, []byte(`"layers"`), []byte(`"layerz"`), 1)
			}
			return b
		})
		defer w.proxy.SetTamper(nil)
		dst := filepath.Join(t.TempDir(), "pulled")
		out, code := maCode(t, "pull", "--plain-http", "--no-progress", "--policy", w.policy, "-o", dst, ref)
		if code != 3 || !strings.Contains(out, "config") {
			t.Fatalf("pull: exit %d\n%s", code, out)
		}
	})
	t.Run("signature by an untrusted key", func(t *testing.T) {
		tgt, desc, ref := w.model("models/untrusted")
		w.sign(tgt, desc, w.stray)
		w.attest(tgt, desc, w.release, provenance(t, goodBuilder, goodDataset))
		w.oms(tgt, desc, w.release)
		w.refused(t, ref, "signatures: 0 of 1")
	})
	t.Run("signature copied from another model", func(t *testing.T) {
		tgtA, descA, _ := w.model("models/replay-a")
		sigA := w.sign(tgtA, descA, w.release)
		r, _ := referrers.FetchReferrer(w.ctx, tgtA, sigA, descA.Digest)
		tgtB, descB, refB := w.model("models/replay-b")
		w.attach(tgtB, descB, r.Bundle, referrers.PredicateCosignSign)
		w.attest(tgtB, descB, w.release, provenance(t, goodBuilder, goodDataset))
		w.oms(tgtB, descB, w.release)
		w.refused(t, refB, "provided artifact digest does not match any digest in statement")
	})
	t.Run("provenance about another digest", func(t *testing.T) {
		tgt, desc, ref := w.model("models/provsubject")
		w.sign(tgt, desc, w.release)
		w.oms(tgt, desc, w.release)
		other := digest.FromString("another model")
		w.attach(tgt, desc, w.bundleFor(w.release, other, referrers.PredicateSLSAProvenance, provenance(t, goodBuilder, goodDataset)), referrers.PredicateSLSAProvenance)
		w.refused(t, ref, "provided artifact digest does not match any digest in statement")
	})
	t.Run("unsigned provenance", func(t *testing.T) {
		tgt, desc, ref := w.model("models/unsigned")
		w.sign(tgt, desc, w.release)
		w.oms(tgt, desc, w.release)
		b := w.bundleFor(w.release, desc.Digest, referrers.PredicateSLSAProvenance, provenance(t, goodBuilder, goodDataset))
		var m map[string]any
		json.Unmarshal(b, &m)
		m["dsseEnvelope"].(map[string]any)["signatures"] = []any{}
		b, _ = json.Marshal(m)
		w.attach(tgt, desc, b, referrers.PredicateSLSAProvenance)
		w.refused(t, ref, "attestation https://slsa.dev/provenance/v1: 0 of 1")
	})
	t.Run("trusted key, wrong builder", func(t *testing.T) {
		tgt, desc, ref := w.model("models/builder")
		w.sign(tgt, desc, w.release)
		w.oms(tgt, desc, w.release)
		w.attest(tgt, desc, w.release, provenance(t, "https://laptop.example/someone", goodDataset))
		w.refused(t, ref, `builder id "https://laptop.example/someone" is not one of`)
	})
	t.Run("missing required dataset", func(t *testing.T) {
		tgt, desc, ref := w.model("models/dataset")
		w.sign(tgt, desc, w.release)
		w.oms(tgt, desc, w.release)
		w.attest(tgt, desc, w.release, provenance(t, goodBuilder, "s3://scraped/unreviewed"))
		w.refused(t, ref, "no resolved dependency s3://acme-datasets/approved/")
	})
	t.Run("expired certificate", func(t *testing.T) {
		tgt, desc, ref := w.model("pki/expired")
		w.sign(tgt, desc, w.pki.signer(t, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)))
		w.refused(t, ref, "expired")
	})
	t.Run("not-yet-valid certificate", func(t *testing.T) {
		tgt, desc, ref := w.model("pki/future")
		w.sign(tgt, desc, w.pki.signer(t, time.Now().Add(24*time.Hour), time.Now().Add(48*time.Hour)))
		w.refused(t, ref, "not yet valid")
	})
	t.Run("valid certificate passes", func(t *testing.T) {
		tgt, desc, ref := w.model("pki/good")
		w.sign(tgt, desc, w.pki.signer(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour)))
		w.passes(t, ref)
	})
	t.Run("wrong keyless identity", func(t *testing.T) {
		tgt, desc, ref := w.model("keyless/intern")
		s, err := referrers.NewKeylessSigner(w.ctx, referrers.KeylessOptions{FulcioURL: w.sig.FulcioURL, RekorURL: w.sig.RekorURL,
			IDToken: w.sig.Token(t, "intern@acme.example")})
		if err != nil {
			t.Fatal(err)
		}
		w.sign(tgt, desc, s)
		w.refused(t, ref, "intern@acme.example")
	})
	t.Run("right keyless identity passes", func(t *testing.T) {
		tgt, desc, ref := w.model("keyless/release")
		out, code := maCode(t, "sign", "--plain-http", "--keyless", "--fulcio-url", w.sig.FulcioURL, "--rekor-url", w.sig.RekorURL,
			"--identity-token", w.sig.Token(t, regtest.TestIdentity), ref)
		if code != 0 {
			t.Fatalf("keyless sign: %d\n%s", code, out)
		}
		_ = tgt
		_ = desc
		w.passes(t, ref)
	})
	t.Run("referrer whose subject is another model", func(t *testing.T) {
		tgtA, descA, _ := w.model("models/elsewhere-a")
		sigA := w.sign(tgtA, descA, w.release)
		r, _ := referrers.FetchReferrer(w.ctx, tgtA, sigA, descA.Digest)
		tgtB, descB, refB := w.model("models/elsewhere-b")
		w.attest(tgtB, descB, w.release, provenance(t, goodBuilder, goodDataset)) // B has a listing to lie in
		planted := w.attach(tgtB, descA, r.Bundle, referrers.PredicateCosignSign) // in B's repository, subject A
		w.rewriteReferrers(descB.Digest, func(idx *ocispec.Index) { idx.Manifests = append(idx.Manifests, planted) })
		defer w.proxy.SetTamper(nil)
		w.refused(t, refB, "its subject is "+descA.Digest.String())
	})
	t.Run("index lies about artifactType", func(t *testing.T) {
		tgt, desc, ref := w.model("models/liar")
		note := []byte("not a signature")
		layer := ocispec.Descriptor{MediaType: "text/plain", Digest: digest.FromBytes(note), Size: int64(len(note))}
		tgt.Push(w.ctx, layer, bytes.NewReader(note))
		if _, err := orasgo.PackManifest(w.ctx, tgt, orasgo.PackManifestVersion1_1, "application/vnd.example.note",
			orasgo.PackManifestOptions{Subject: &desc, Layers: []ocispec.Descriptor{layer}}); err != nil {
			t.Fatal(err)
		}
		w.rewriteReferrers(desc.Digest, func(idx *ocispec.Index) {
			for i := range idx.Manifests {
				idx.Manifests[i].ArtifactType = referrers.BundleMediaType
				idx.Manifests[i].Annotations = map[string]string{referrers.AnnotationPredicateType: referrers.PredicateCosignSign}
			}
		})
		defer w.proxy.SetTamper(nil)
		w.refused(t, ref, `artifactType "application/vnd.example.note" is not a Sigstore bundle`)
	})
	t.Run("index hides the artifactType of real bundles", func(t *testing.T) {
		tgt, desc, ref := w.model("models/hidden")
		w.fullySigned(tgt, desc)
		w.rewriteReferrers(desc.Digest, func(idx *ocispec.Index) {
			for i := range idx.Manifests {
				idx.Manifests[i].ArtifactType = "application/vnd.oci.empty.v1+json" // what some registries report
			}
		})
		defer w.proxy.SetTamper(nil)
		w.passes(t, ref)
	})
	cycle := func(t *testing.T) {
		tgt, desc, ref := w.model("models/cycle")
		w.fullySigned(tgt, desc)
		refs, _ := oras.Referrers(w.ctx, tgt, desc, "")
		sig := refs[0]
		w.rewriteReferrers(sig.Digest, func(idx *ocispec.Index) { idx.Manifests = append(idx.Manifests, desc) })
		defer w.proxy.SetTamper(nil)
		w.refused(t, ref, "a cycle")
	}
	if !w.tagSchema { // a signature has no tag index of its own to lie in
		t.Run("referrer cycle", cycle)
	}
	t.Run("10,000 referrers", func(t *testing.T) {
		tgt, desc, ref := w.model("models/flood")
		w.fullySigned(tgt, desc)
		w.rewriteReferrers(desc.Digest, func(idx *ocispec.Index) {
			for i := 0; len(idx.Manifests) < 10000; i++ {
				idx.Manifests = append(idx.Manifests, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest,
					ArtifactType: referrers.BundleMediaType, Digest: digest.FromString(fmt.Sprint(i)), Size: 500})
			}
		})
		defer w.proxy.SetTamper(nil)
		w.refused(t, ref, "10000 referrers listed, over the limit")
	})
	t.Run("oversized bundle", func(t *testing.T) {
		tgt, desc, ref := w.model("models/oversized")
		w.attest(tgt, desc, w.release, provenance(t, goodBuilder, goodDataset))
		w.oms(tgt, desc, w.release)
		big := []byte(`{"padding":"` + strings.Repeat("x", 2<<20) + `"}`)
		w.attach(tgt, desc, big, referrers.PredicateCosignSign)
		w.refused(t, ref, "over the 1048576-byte limit")
	})
	t.Run("malformed bundle JSON", func(t *testing.T) {
		tgt, desc, ref := w.model("models/malformed")
		w.attest(tgt, desc, w.release, provenance(t, goodBuilder, goodDataset))
		w.oms(tgt, desc, w.release)
		w.attach(tgt, desc, []byte(`{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "dsseEnvelope": {`), referrers.PredicateCosignSign)
		w.refused(t, ref, "bundle is not JSON")
	})
	t.Run("bundle with two signatures, one bad", func(t *testing.T) {
		tgt, desc, ref := w.model("models/twosigs")
		w.attest(tgt, desc, w.release, provenance(t, goodBuilder, goodDataset))
		w.oms(tgt, desc, w.release)
		b := w.bundleFor(w.release, desc.Digest, referrers.PredicateCosignSign, nil)
		var m map[string]any
		json.Unmarshal(b, &m)
		env := m["dsseEnvelope"].(map[string]any)
		sigs := env["signatures"].([]any)
		env["signatures"] = append(sigs, map[string]any{"sig": base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x30}, 70))})
		b, _ = json.Marshal(m)
		w.attach(tgt, desc, b, referrers.PredicateCosignSign)
		w.refused(t, ref, "envelope has 2 signatures, want exactly 1")
	})
	t.Run("threshold 2 met by one signer twice", func(t *testing.T) {
		tgt, desc, ref := w.model("dual/twice")
		w.sign(tgt, desc, w.release)
		w.sign(tgt, desc, w.release)
		w.refused(t, ref, "signatures: 1 of 2 required distinct signers")
	})
	t.Run("threshold 2 met by two signers passes", func(t *testing.T) {
		tgt, desc, ref := w.model("dual/both")
		w.sign(tgt, desc, w.release)
		w.sign(tgt, desc, w.qa)
		w.passes(t, ref)
	})
	t.Run("model-signing statement missing a file", func(t *testing.T) {
		tgt, desc, ref := w.model("models/omsmissing")
		w.sign(tgt, desc, w.release)
		w.attest(tgt, desc, w.release, provenance(t, goodBuilder, goodDataset))
		m, _, _ := oras.FetchManifest(w.ctx, tgt, desc)
		partial := *m
		partial.Layers = m.Layers[:len(m.Layers)-1] // leave out tokenizer.json
		st, _, err := referrers.OMSStatement(partial, "tiny")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := w.release.SignStatement(w.ctx, st)
		w.attach(tgt, desc, b, referrers.PredicateModelSigning)
		w.refused(t, ref, `layer "tokenizer.json" is not covered by the model-signing statement`)
	})
	t.Run("no rule matches: denied", func(t *testing.T) {
		_, _, ref := w.model("elsewhere/model")
		w.refused(t, ref, "the rule rejects every matching model")
	})
}

// testPKI is a company CA that issues code-signing certificates for
// CN=ml-release,O=Acme with chosen validity.
type testPKI struct {
	rootPEM []byte
	root    *x509.Certificate
	rootKey *ecdsa.PrivateKey
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Acme Root", Organization: []string{"Acme"}},
		NotBefore: time.Now().Add(-72 * time.Hour), NotAfter: time.Now().Add(72 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testPKI{rootPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), root: c, rootKey: key}
}

func (p *testPKI) signer(t *testing.T, notBefore, notAfter time.Time) *referrers.Signer {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "ml-release", Organization: []string{"Acme"}},
		NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.root, key.Public(), crypto.Signer(p.rootKey))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := referrers.NewSigner(key)
	s, err = s.WithCertificateChain(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
