package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/notaryproject/notation-go/registry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/memory"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// notationCLI runs the real notation v1.3.2 with its configuration in a
// folder of the test's own (XDG_CONFIG_HOME), never the user's.
type notationCLI struct {
	bin, home, config string
}

func newNotationCLI(t *testing.T) *notationCLI {
	bin := regtest.Tool(t, "notation")
	home := t.TempDir()
	return &notationCLI{bin: bin, home: home, config: filepath.Join(home, "config", "notation")}
}

func (n *notationCLI) run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(n.bin, args...)
	cmd.Env = append(os.Environ(), "HOME="+n.home, "XDG_CONFIG_HOME="+filepath.Join(n.home, "config"),
		"XDG_CACHE_HOME="+filepath.Join(n.home, "cache"), "DOCKER_CONFIG="+n.home)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (n *notationCLI) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := n.run(t, args...)
	if err != nil {
		t.Fatalf("notation %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// pushModel pushes a new small model with our CLI and returns its
// reference by digest.
func pushModel(t *testing.T, host, repo string) string {
	t.Helper()
	out := ma(t, "push", "--no-progress", "--plain-http", host+"/"+repo+":v1", regtest.ModelDir(t, 4096))
	return host + "/" + repo + "@" + digestOf(t, out)
}

// TestNotationInterop: signatures made by the real notation CLI (COSE and
// JWS, a key from `notation cert generate-test`) count in our verify under
// a policy imported from notation's own trust policy and trust store; ours
// are accepted by `notation verify` and listed by `notation list` and
// `oras discover`.
func TestNotationInterop(t *testing.T) {
	n := newNotationCLI(t)
	orasBin := regtest.Tool(t, "oras")
	host := regtest.Embedded(t, "")

	// notation's own key, trust store entry and signatures.
	n.must(t, "cert", "generate-test", "--default", "release")
	theirs := pushModel(t, host, "models/notation-signed")
	n.must(t, "sign", "--insecure-registry", "--signature-format", "cose", theirs)
	n.must(t, "sign", "--insecure-registry", "--signature-format", "jws", theirs)

	// Our signer: a company PKI, its root added to notation's trust store.
	dir := t.TempDir()
	ca := regtest.NewNotaryCA(t, "Acme Root")
	subject := pkix.Name{CommonName: "ml-release", Organization: []string{"Acme"}, Province: []string{"WA"}, Country: []string{"US"}}
	leaf := ca.Leaf(t, subject, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), "")
	key := regtest.WriteKey(t, filepath.Join(dir, "release.key"), leaf.Key)
	chain := regtest.WritePEM(t, filepath.Join(dir, "release-chain.pem"), leaf.Chain...)
	n.must(t, "cert", "add", "--type", "ca", "--store", "acme", regtest.WritePEM(t, filepath.Join(dir, "acme-root.pem"), ca.Cert))

	// notation's trust policy, installed by notation itself.
	tp := filepath.Join(dir, "trustpolicy.json")
	os.WriteFile(tp, []byte(`{"version": "1.0", "trustPolicies": [{
	  "name": "release", "registryScopes": ["*"],
	  "signatureVerification": {"level": "strict"},
	  "trustStores": ["ca:release", "ca:acme"],
	  "trustedIdentities": ["x509.subject: CN=release, O=Notary, L=Seattle, ST=WA, C=US", "x509.subject: CN=ml-release, O=Acme, ST=WA, C=US"]}]}`), 0o644)
	n.must(t, "policy", "import", "--force", tp)

	policy := filepath.Join(dir, "policy.yaml")
	os.WriteFile(policy, []byte(ma(t, "policy", "import-notation", n.config)), 0o644)

	t.Run("notation sign, our verify", func(t *testing.T) {
		out := ma(t, "verify", "--plain-http", "--policy", policy, theirs)
		for _, want := range []string{"Result:  PASS", "Notary Project signature (notation-cose) verified by release", "Notary Project signature (notation-jws) verified by release", "signer CN=release,O=Notary,L=Seattle,ST=WA,C=US"} {
			if !strings.Contains(out, want) {
				t.Errorf("verify output lacks %q:\n%s", want, out)
			}
		}
		if tree := ma(t, "discover", "--plain-http", theirs); !strings.Contains(tree, "notation-cose signed by CN=release") || !strings.Contains(tree, "notation-jws signed by CN=release") {
			t.Errorf("discover:\n%s", tree)
		}
	})

	for _, format := range []string{"cose", "jws"} {
		t.Run("our sign ("+format+"), notation verify, list and oras discover", func(t *testing.T) {
			ours := pushModel(t, host, "models/ours-"+format)
			out := ma(t, "sign", "--notation", "--signature-format", format, "--plain-http", "--key", key, "--certificate-chain", chain, "--format", "json", ours)
			var res struct {
				Referrer ocispec.Descriptor `json:"referrer"`
				Format   string             `json:"format"`
				Signer   string             `json:"signer"`
			}
			if err := json.Unmarshal([]byte(out), &res); err != nil || res.Format != "notation-"+format {
				t.Fatalf("%v\n%s", err, out)
			}
			if out := n.must(t, "verify", "--insecure-registry", ours); !strings.Contains(out, "Successfully verified signature") {
				t.Fatalf("notation verify:\n%s", out)
			}
			if out := n.must(t, "list", "--insecure-registry", ours); !strings.Contains(out, res.Referrer.Digest.String()) {
				t.Fatalf("notation list lacks %s:\n%s", res.Referrer.Digest, out)
			}
			if out := regtest.Run(t, orasBin, "discover", "--plain-http", ours); !strings.Contains(out, referrers.NotationArtifactType) || !strings.Contains(out, res.Referrer.Digest.String()) {
				t.Fatalf("oras discover:\n%s", out)
			}
			if out := ma(t, "verify", "--plain-http", "--policy", policy, ours); !strings.Contains(out, "signer CN=ml-release,O=Acme,ST=WA,C=US") {
				t.Fatalf("our verify:\n%s", out)
			}
		})
	}

	t.Run("an identity outside notation's list is refused by notation too", func(t *testing.T) {
		intern := ca.Leaf(t, pkix.Name{CommonName: "intern", Organization: []string{"Acme"}, Province: []string{"WA"}, Country: []string{"US"}},
			time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), "")
		ref := pushModel(t, host, "models/intern")
		ma(t, "sign", "--notation", "--plain-http", "--key", regtest.WriteKey(t, filepath.Join(dir, "intern.key"), intern.Key),
			"--certificate-chain", regtest.WritePEM(t, filepath.Join(dir, "intern-chain.pem"), intern.Chain...), ref)
		if out, err := n.run(t, "verify", "--insecure-registry", ref); err == nil {
			t.Fatalf("notation verify accepted:\n%s", out)
		}
		out, code := maCode(t, "verify", "--plain-http", "--policy", policy, ref)
		if code != 3 || !strings.Contains(out, "is not one of the trusted identities") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
	})
}

// notaryWorld is one place models live (the embedded registry, the
// distribution registry with the tag schema, or OCI layouts read offline),
// a Notary Project PKI with a TSA and a CRL, a cosign key, and a policy.
type notaryWorld struct {
	t        *testing.T
	ctx      context.Context
	kind     string // embedded, distribution, layout
	host     string // registry host, or the layouts' folder
	dir      string
	policy   string
	ca       *regtest.NotaryCA
	tsa      *regtest.TSA
	cosignPK string
	keys     map[string][2]string // signer name → key, chain files
}

var notaryRelease = pkix.Name{CommonName: "ml-release", Organization: []string{"Acme"}, Province: []string{"WA"}, Country: []string{"US"}}

func newNotaryWorld(t *testing.T, kind string) *notaryWorld {
	w := &notaryWorld{t: t, ctx: context.Background(), kind: kind, dir: t.TempDir(), keys: map[string][2]string{}}
	switch kind {
	case "embedded":
		w.host = regtest.Embedded(t, "")
	case "distribution":
		w.host = regtest.Distribution(t, "")
	default:
		w.host = filepath.Join(w.dir, "layouts")
	}
	w.ca = regtest.NewNotaryCA(t, "Acme Root")
	w.tsa = regtest.NewTSA(t, time.Now().Add(-24*time.Hour))
	now := time.Now()
	w.signer("release", w.ca.Leaf(t, notaryRelease, now.Add(-time.Hour), now.Add(24*time.Hour), ""))
	w.signer("stranger", regtest.NewNotaryCA(t, "Other Root").Leaf(t, notaryRelease, now.Add(-time.Hour), now.Add(24*time.Hour), ""))
	w.signer("intern", w.ca.Leaf(t, pkix.Name{CommonName: "ml-intern", Organization: []string{"Acme"}, Province: []string{"WA"}, Country: []string{"US"}},
		now.Add(-time.Hour), now.Add(24*time.Hour), ""))
	revoked := w.ca.Leaf(t, notaryRelease, now.Add(-time.Hour), now.Add(24*time.Hour), "http://crl.acme.example/root.crl")
	w.signer("revoked", revoked)
	w.ca.Revoke(revoked)
	os.WriteFile(filepath.Join(w.dir, "root.crl"), w.ca.CRL(t), 0o644)
	regtest.WritePEM(t, filepath.Join(w.dir, "root.pem"), w.ca.Cert)
	regtest.WritePEM(t, filepath.Join(w.dir, "tsa-root.pem"), w.tsa.Root)

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	w.cosignPK = regtest.WriteKey(t, filepath.Join(w.dir, "cosign.key"), key)
	der, _ := x509.MarshalPKIXPublicKey(key.Public())
	os.WriteFile(filepath.Join(w.dir, "cosign.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)

	w.policy = filepath.Join(w.dir, "policy.yaml")
	os.WriteFile(w.policy, []byte(fmt.Sprintf(`version: 1
trust:
  cosign-release: {key: cosign.pub}
  notation-release:
    notation:
      ca: [root.pem]
      tsa: [tsa-root.pem]
      trustedIdentities: ["x509.subject: CN=ml-release, O=Acme, ST=WA, C=US"]
      verifyTimestamp: afterCertExpiry
      crls: [root.crl]
models:
  - match: ["%[1]s/notary/**"]
    signatures: {signers: [notation-release]}
  - match: ["%[1]s/both/**"]
    signatures: {signers: [cosign-release, notation-release], threshold: 2}
  - match: ["**"]
    reject: true
`, w.host)), 0o644)
	return w
}

func (w *notaryWorld) signer(name string, l *regtest.NotaryLeaf) {
	w.keys[name] = [2]string{regtest.WriteKey(w.t, filepath.Join(w.dir, name+".key"), l.Key), regtest.WritePEM(w.t, filepath.Join(w.dir, name+"-chain.pem"), l.Chain...)}
}

// args are the flags and reference that name repo's model to the CLI.
func (w *notaryWorld) args(repo string) []string {
	if w.kind == "layout" {
		return []string{"--oci-layout", filepath.Join(w.host, repo) + ":v1"}
	}
	return []string{"--plain-http", w.host + "/" + repo + ":v1"}
}

// model pushes a new model to repo and opens it for the library.
func (w *notaryWorld) model(repo string) (*oras.Target, ocispec.Descriptor) {
	w.t.Helper()
	ma(w.t, append(append([]string{"push", "--no-progress"}, w.args(repo)...), regtest.ModelDir(w.t, 4096))...)
	var tgt *oras.Target
	var err error
	if w.kind == "layout" {
		tgt, err = oras.OpenLayout(filepath.Join(w.host, repo) + ":v1")
	} else {
		tgt, err = oras.OpenRemote(w.ctx, w.host+"/"+repo+":v1", oras.RemoteOptions{PlainHTTP: true})
	}
	if err != nil {
		w.t.Fatal(err)
	}
	desc, err := oras.Resolve(w.ctx, tgt, "v1")
	if err != nil {
		w.t.Fatal(err)
	}
	return tgt, desc
}

// sign signs repo's model with a Notary Project signature through the CLI.
func (w *notaryWorld) sign(t *testing.T, repo, who string, extra ...string) ocispec.Descriptor {
	t.Helper()
	args := append([]string{"sign", "--notation", "--format", "json", "--key", w.keys[who][0], "--certificate-chain", w.keys[who][1]}, extra...)
	out := ma(t, append(args, w.args(repo)...)...)
	var res struct {
		Referrer ocispec.Descriptor `json:"referrer"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return res.Referrer
}

// envelope reads the envelope layer of a signature referrer.
func (w *notaryWorld) envelope(t *testing.T, tgt *oras.Target, sig ocispec.Descriptor) (string, []byte) {
	t.Helper()
	m, _, err := oras.FetchManifest(w.ctx, tgt, sig)
	if err != nil {
		t.Fatal(err)
	}
	b, err := content.FetchAll(w.ctx, tgt, m.Layers[0])
	if err != nil {
		t.Fatal(err)
	}
	return m.Layers[0].MediaType, b
}

// envelopeFor makes a Notary Project envelope over desc with the library,
// stored nowhere that matters (a memory store): a test then attaches it
// where it likes.
func (w *notaryWorld) envelopeFor(t *testing.T, desc ocispec.Descriptor, who string) (string, []byte) {
	t.Helper()
	s, err := referrers.LoadNotationSigner(w.ctx, w.keys[who][0], mustRead(t, w.keys[who][1]), nil)
	if err != nil {
		t.Fatal(err)
	}
	scratch := memory.New()
	res, err := referrers.SignNotation(w.ctx, scratch, desc, s, referrers.NotationSignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	env, err := content.FetchAll(w.ctx, scratch, res.Envelope)
	if err != nil {
		t.Fatal(err)
	}
	return res.Envelope.MediaType, env
}

// attach stores an envelope as a Notary Project signature of subject, as
// notation does, whatever the envelope says.
func (w *notaryWorld) attach(t *testing.T, tgt *oras.Target, subject ocispec.Descriptor, mediaType string, env []byte) {
	t.Helper()
	if _, _, err := registry.NewRepository(tgt.GraphTarget).PushSignature(w.ctx, mediaType, env, subject, nil); err != nil {
		t.Fatal(err)
	}
}

func (w *notaryWorld) verify(t *testing.T, repo string) (string, int) {
	t.Helper()
	return maCode(t, append([]string{"verify", "--policy", w.policy}, w.args(repo)...)...)
}

func (w *notaryWorld) passes(t *testing.T, repo string) string {
	t.Helper()
	out, code := w.verify(t, repo)
	if code != 0 {
		t.Fatalf("verify: exit %d\n%s", code, out)
	}
	return out
}

func (w *notaryWorld) refused(t *testing.T, repo string, want ...string) {
	t.Helper()
	out, code := w.verify(t, repo)
	if code != 3 {
		t.Fatalf("verify: exit %d (want 3)\n%s", code, out)
	}
	for _, s := range want {
		if !strings.Contains(out, s) {
			t.Fatalf("verify output lacks %q:\n%s", s, out)
		}
	}
	// A verified pull refuses the same model and writes nothing.
	dst := filepath.Join(t.TempDir(), "pulled")
	out, code = maCode(t, append([]string{"pull", "--no-progress", "--policy", w.policy, "-o", dst}, w.args(repo)...)...)
	if code != 3 || !strings.Contains(out, want[0]) {
		t.Fatalf("pull: exit %d (want 3), output lacks %q:\n%s", code, want[0], out)
	}
	if entries := regtest.Entries(t, filepath.Dir(dst)); len(entries) != 0 {
		t.Fatalf("a refused pull wrote %v", entries)
	}
}

// TestNotationTamperMatrix runs the Notary Project refusals on the
// embedded registry (Referrers API).
func TestNotationTamperMatrix(t *testing.T) { notationTamper(t, newNotaryWorld(t, "embedded")) }

// TestNotationTamperMatrixTagSchema runs them on the distribution registry,
// where referrers live in sha256-<hex> tag indexes.
func TestNotationTamperMatrixTagSchema(t *testing.T) {
	notationTamper(t, newNotaryWorld(t, "distribution"))
}

// TestNotationTamperMatrixLayout runs them from OCI layouts, offline.
func TestNotationTamperMatrixLayout(t *testing.T) { notationTamper(t, newNotaryWorld(t, "layout")) }

func notationTamper(t *testing.T, w *notaryWorld) {
	// The expiring certificate is made first: the cases below run while it
	// expires, and the two that need it expired wait only for what is left.
	expires := time.Now().Add(5 * time.Second).Truncate(time.Second)
	w.signer("short-lived", w.ca.Leaf(t, notaryRelease, time.Now().Add(-time.Hour), expires, ""))
	w.model("notary/expired-bare")
	w.sign(t, "notary/expired-bare", "short-lived")
	w.model("notary/expired-stamped")
	w.sign(t, "notary/expired-stamped", "short-lived", "--timestamp-url", w.tsa.URL, "--timestamp-root-cert", filepath.Join(w.dir, "tsa-root.pem"))

	t.Run("control: COSE signature passes", func(t *testing.T) {
		w.model("notary/cose")
		w.sign(t, "notary/cose", "release")
		out := w.passes(t, "notary/cose")
		if !strings.Contains(out, "Notary Project signature (notation-cose) verified by notation-release, signer CN=ml-release,O=Acme,ST=WA,C=US") ||
			!strings.Contains(out, "revocation checked against CRL files") {
			t.Fatalf("report:\n%s", out)
		}
	})
	t.Run("control: JWS signature passes", func(t *testing.T) {
		w.model("notary/jws")
		w.sign(t, "notary/jws", "release", "--signature-format", "jws")
		w.passes(t, "notary/jws")
	})
	t.Run("tampered envelope", func(t *testing.T) {
		tgt, desc := w.model("notary/tampered")
		mt, env := w.envelopeFor(t, desc, "release")
		env[len(env)-20] ^= 0x01 // inside the signature bytes
		w.attach(t, tgt, desc, mt, env)
		w.refused(t, "notary/tampered", "notation integrity check")
	})
	t.Run("re-attached signature of another model", func(t *testing.T) {
		src, _ := w.model("notary/original")
		mt, env := w.envelope(t, src, w.sign(t, "notary/original", "release"))
		tgt, desc := w.model("notary/reattached")
		w.attach(t, tgt, desc, mt, env)
		w.refused(t, "notary/reattached", "the signature is over", "not this model's manifest "+desc.Digest.String())
	})
	t.Run("signed descriptor of another size", func(t *testing.T) {
		tgt, desc := w.model("notary/size")
		wrong := desc
		wrong.Size++
		mt, env := w.envelopeFor(t, wrong, "release")
		w.attach(t, tgt, desc, mt, env)
		w.refused(t, "notary/size", fmt.Sprintf("(%d bytes", desc.Size+1))
	})
	t.Run("untrusted root", func(t *testing.T) {
		w.model("notary/stranger")
		w.sign(t, "notary/stranger", "stranger")
		w.refused(t, "notary/stranger", "notation authenticity check")
	})
	t.Run("identity outside the list", func(t *testing.T) {
		w.model("notary/intern")
		w.sign(t, "notary/intern", "intern")
		w.refused(t, "notary/intern", `signing certificate "CN=ml-intern,O=Acme,ST=WA,C=US" is not one of the trusted identities`)
	})
	t.Run("revoked by the CRL file", func(t *testing.T) {
		w.model("notary/revoked")
		w.sign(t, "notary/revoked", "revoked")
		w.refused(t, "notary/revoked", "notation revocation check", "is revoked")
	})
	t.Run("2 of [cosign-release, notation-release]", func(t *testing.T) {
		w.model("both/one-each")
		ma(t, append([]string{"sign", "--key", w.cosignPK}, w.args("both/one-each")...)...)
		w.sign(t, "both/one-each", "release")
		if out := w.passes(t, "both/one-each"); !strings.Contains(out, "ok    signatures (by cosign-release, notation-release)") {
			t.Fatalf("report:\n%s", out)
		}
		w.model("both/two-cosign")
		ma(t, append([]string{"sign", "--key", w.cosignPK}, w.args("both/two-cosign")...)...)
		ma(t, append([]string{"sign", "--key", w.cosignPK}, w.args("both/two-cosign")...)...)
		w.refused(t, "both/two-cosign", "1 of 2 required distinct signers")
		w.model("both/two-notary")
		w.sign(t, "both/two-notary", "release")
		w.sign(t, "both/two-notary", "release", "--signature-format", "jws")
		w.refused(t, "both/two-notary", "1 of 2 required distinct signers")
	})
	time.Sleep(time.Until(expires) + 1500*time.Millisecond)
	t.Run("expired certificate without a timestamp", func(t *testing.T) {
		w.refused(t, "notary/expired-bare", "notation authenticTimestamp check", "no timestamp countersignature")
	})
	t.Run("expired certificate, timestamped by a trusted TSA while valid", func(t *testing.T) {
		w.passes(t, "notary/expired-stamped")
	})
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestNotationCommandLine: a wrong command line is exit 2 and names the
// flag; a key that does not match its certificate is exit 1 and pushes
// nothing.
func TestNotationCommandLine(t *testing.T) {
	host := regtest.Embedded(t, "")
	ref := pushModel(t, host, "models/cli")
	dir := t.TempDir()
	ca := regtest.NewNotaryCA(t, "Acme Root")
	a := ca.Leaf(t, notaryRelease, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), "")
	b := ca.Leaf(t, notaryRelease, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), "")
	key := regtest.WriteKey(t, filepath.Join(dir, "a.key"), a.Key)
	chain := regtest.WritePEM(t, filepath.Join(dir, "a-chain.pem"), a.Chain...)
	otherChain := regtest.WritePEM(t, filepath.Join(dir, "b-chain.pem"), b.Chain...)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"envelope without --notation", []string{"sign", "--plain-http", "--key", key, "--signature-format", "jws", ref}, 2, "--signature-format needs --notation"},
		{"unknown envelope", []string{"sign", "--notation", "--plain-http", "--key", key, "--certificate-chain", chain, "--signature-format", "xml", ref}, 2, "want cose or jws"},
		{"no certificate chain", []string{"sign", "--notation", "--plain-http", "--key", key, ref}, 2, "--certificate-chain"},
		{"keyless", []string{"sign", "--notation", "--plain-http", "--keyless", ref}, 2, "not --keyless"},
		{"timestamp URL without its root", []string{"sign", "--notation", "--plain-http", "--key", key, "--certificate-chain", chain, "--timestamp-url", "http://127.0.0.1:1/", ref}, 2, "--timestamp-root-cert"},
		{"chain for another key", []string{"sign", "--notation", "--plain-http", "--key", key, "--certificate-chain", otherChain, ref}, 1, "is not for this key"},
		{"import of a folder without a trust policy", []string{"policy", "import-notation", dir}, 1, "trustpolicy.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, code := maCode(t, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d (want %d), output lacks %q:\n%s", code, tc.code, tc.want, out)
			}
		})
	}
	if out := ma(t, "discover", "--plain-http", "--format", "json", ref); strings.Contains(out, referrers.NotationArtifactType) {
		t.Fatalf("a refused signing pushed a referrer:\n%s", out)
	}
}
