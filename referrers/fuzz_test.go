package referrers

import (
	"context"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// FuzzParseBundle: any bytes either parse into a bundle or are refused,
// and a parsed bundle never verifies against a fresh key.
func FuzzParseBundle(f *testing.F) {
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"x"}},"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"MEUCIQ=="}]}}`))
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle+json;version=0.1"}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := ParseBundle(b); err != nil {
			return
		}
	})
}

// FuzzParseStatement: statements parse or are refused; Names never panics.
func FuzzParseStatement(f *testing.F) {
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"` + strings.Repeat("a", 64) + `"}}],"predicateType":"x","predicate":{}}`))
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v0.1","subject":null,"predicateType":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseStatement(b)
		if err != nil {
			return
		}
		st.Names(digest.Digest("sha256:" + strings.Repeat("a", 64)))
		if st.PredicateType == "" {
			t.Fatal("accepted a statement without predicateType")
		}
	})
}

// FuzzParsePolicy: a policy either loads or is refused with ErrPolicy.
func FuzzParsePolicy(f *testing.F) {
	f.Add([]byte("version: 1\nmodels:\n  - match: [\"**\"]\n    reject: true\n"))
	f.Add([]byte("version: 1\ntrust: {k: {key: k.pub}}\nmodels:\n  - match: [\"a/**\"]\n    signatures: {signers: [k], threshold: 2}\n"))
	f.Add([]byte("version: [1"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePolicy(context.Background(), b, dir)
		if err != nil {
			return
		}
		for i, r := range p.Models {
			if len(r.match) == 0 {
				t.Fatalf("rule %d loaded without a matcher", i)
			}
			p.Match("registry.example/models/x")
		}
	})
}

// FuzzOMSStatement: any manifest either yields a model-signing statement
// whose subject is the digest over its resources, or is refused.
func FuzzOMSStatement(f *testing.F) {
	f.Add("a.bin", "b/c.json", strings.Repeat("a", 64), strings.Repeat("b", 64))
	f.Add("../x", "y", strings.Repeat("a", 64), "zz")
	f.Fuzz(func(t *testing.T, p1, p2, h1, h2 string) {
		m := ocispec.Manifest{Layers: []ocispec.Descriptor{
			{MediaType: "application/vnd.cncf.model.weight.v1.raw", Digest: digest.Digest("sha256:" + h1), Annotations: map[string]string{"org.cncf.model.filepath": p1}},
			{MediaType: "application/vnd.cncf.model.doc.v1.raw", Digest: digest.Digest("sha256:" + h2), Annotations: map[string]string{"org.cncf.model.filepath": p2}},
		}}
		b, pred, err := OMSStatement(m, "m")
		if err != nil {
			return
		}
		st, err := ParseStatement(b)
		if err != nil {
			t.Fatalf("our own statement does not parse: %v", err)
		}
		files := map[string]string{}
		for _, r := range pred.Resources {
			files[r.Name] = r.Digest
		}
		if err := CheckOMS(st, files); err != nil {
			t.Fatalf("our own statement does not check: %v", err)
		}
		if err := CheckOMSManifest(st, m); err != nil {
			t.Fatalf("our own statement does not cover its manifest: %v", err)
		}
	})
}
