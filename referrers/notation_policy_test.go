package referrers_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// TestThresholdAcrossFormats: "2 of [cosign-release, notation-release]" is
// met by one cosign signature and one Notary Project signature, and not by
// two signatures of either kind alone (distinct signers, not signatures).
func TestThresholdAcrossFormats(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(key.Public())
	os.WriteFile(filepath.Join(dir, "cosign.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
	cosignSigner, err := referrers.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	ca := regtest.NewNotaryCA(t, "Acme Root")
	regtest.WritePEM(t, filepath.Join(dir, "notary-root.pem"), ca.Cert)
	leaf := ca.Leaf(t, releaseName, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), "")
	notarySigner, err := referrers.NewNotationSigner(leaf.Key, leaf.Chain)
	if err != nil {
		t.Fatal(err)
	}
	p, err := referrers.LoadPolicy(ctx, writePolicy(t, dir, `version: 1
trust:
  cosign-release: {key: cosign.pub}
  notation-release:
    notation:
      ca: [notary-root.pem]
      trustedIdentities: ["`+releaseIdentity+`"]
models:
  - match: ["**"]
    signatures: {signers: [cosign-release, notation-release], threshold: 2}
`))
	if err != nil {
		t.Fatal(err)
	}
	cosign := func(tgt *oras.Target, m ocispec.Descriptor) {
		if _, err := referrers.Sign(ctx, tgt, m, cosignSigner, referrers.AttachOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	notary := func(tgt *oras.Target, m ocispec.Descriptor, envelope string) {
		if _, err := referrers.SignNotation(ctx, tgt, m, notarySigner, referrers.NotationSignOptions{EnvelopeType: envelope}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		sign func(*oras.Target, ocispec.Descriptor)
		pass bool
	}{
		{"one cosign and one Notary Project signature", func(tg *oras.Target, m ocispec.Descriptor) { cosign(tg, m); notary(tg, m, "") }, true},
		{"two cosign signatures", func(tg *oras.Target, m ocispec.Descriptor) { cosign(tg, m); cosign(tg, m) }, false},
		{"two Notary Project signatures (COSE and JWS)", func(tg *oras.Target, m ocispec.Descriptor) {
			notary(tg, m, referrers.NotationEnvelopeCOSE)
			notary(tg, m, referrers.NotationEnvelopeJWS)
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tgt, err := oras.OpenLayout(filepath.Join(t.TempDir(), "layout"))
			if err != nil {
				t.Fatal(err)
			}
			m := model(t, tgt)
			tc.sign(tgt, m)
			rep, err := referrers.VerifyModel(ctx, tgt, "fixture", m, p, referrers.VerifyOptions{})
			if tc.pass {
				if err != nil {
					t.Fatal(err)
				}
				if got := strings.Join(rep.Requirements[0].By, ","); got != "cosign-release,notation-release" {
					t.Fatalf("by %s", got)
				}
				formats := map[string]bool{}
				for _, f := range rep.Referrers {
					formats[f.Format] = true
				}
				if !formats[referrers.FormatSigstoreBundle] || !formats[referrers.FormatNotationCOSE] {
					t.Fatalf("formats in the report: %v", formats)
				}
				return
			}
			var pe *referrers.PolicyError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), "1 of 2 required distinct signers") {
				t.Fatalf("got %v", err)
			}
		})
	}
}

// TestOneKeyAcrossFormats: one key that signs a bundle (with its
// certificate chain, under an x509 anchor) and a Notary Project signature
// (under a notation anchor) is one signer: "2 of" the two anchors is not met.
func TestOneKeyAcrossFormats(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ca := regtest.NewNotaryCA(t, "Acme Root")
	regtest.WritePEM(t, filepath.Join(dir, "root.pem"), ca.Cert)
	leaf := ca.Leaf(t, releaseName, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), "")
	keyFile := regtest.WriteKey(t, filepath.Join(dir, "release.key"), leaf.Key)
	chainPEM, _ := os.ReadFile(regtest.WritePEM(t, filepath.Join(dir, "chain.pem"), leaf.Chain...))
	bundleSigner, err := referrers.LoadSigner(ctx, keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bundleSigner, err = bundleSigner.WithCertificateChain(chainPEM); err != nil {
		t.Fatal(err)
	}
	notarySigner, err := referrers.LoadNotationSigner(ctx, keyFile, chainPEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := referrers.LoadPolicy(ctx, writePolicy(t, dir, `version: 1
trust:
  corp-x509:
    x509: {roots: root.pem, subject: "CN=ml-release,O=Acme,ST=WA,C=US"}
  corp-notation:
    notation: {ca: [root.pem], trustedIdentities: ["`+releaseIdentity+`"]}
models:
  - match: ["**"]
    signatures: {signers: [corp-x509, corp-notation], threshold: 2}
`))
	if err != nil {
		t.Fatal(err)
	}
	tgt, err := oras.OpenLayout(filepath.Join(t.TempDir(), "layout"))
	if err != nil {
		t.Fatal(err)
	}
	m := model(t, tgt)
	if _, err := referrers.Sign(ctx, tgt, m, bundleSigner, referrers.AttachOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := referrers.SignNotation(ctx, tgt, m, notarySigner, referrers.NotationSignOptions{}); err != nil {
		t.Fatal(err)
	}
	rep, err := referrers.VerifyModel(ctx, tgt, "fixture", m, p, referrers.VerifyOptions{})
	verified := 0
	for _, f := range rep.Referrers {
		if f.Verdict == "verified" {
			verified++
		}
	}
	if verified != 2 {
		t.Fatalf("want both signatures verified (each by its anchor), got %+v", rep.Referrers)
	}
	if err == nil || !strings.Contains(err.Error(), "1 of 2 required distinct signers") {
		t.Fatalf("one key in two formats counted as two signers: %v", err)
	}
}

// TestImportNotation: notation's own configuration folder becomes a policy
// that loads, with the level mapping of docs/POLICY.md, and what cannot be
// expressed is refused by name.
func TestImportNotation(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ca := regtest.NewNotaryCA(t, "Acme Root")
	regtest.WritePEM(t, filepath.Join(dir, "truststore/x509/ca/acme/root.crt"), ca.Cert)
	tsa := regtest.NewTSA(t, time.Now().Add(-time.Hour))
	regtest.WritePEM(t, filepath.Join(dir, "truststore/x509/tsa/tsa/root.crt"), tsa.Root)
	write := func(body string) {
		if err := os.WriteFile(filepath.Join(dir, "trustpolicy.json"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"version": "1.0", "trustPolicies": [
	  {"name": "everything", "registryScopes": ["*"], "signatureVerification": {"level": "audit"},
	   "trustStores": ["ca:acme"], "trustedIdentities": ["*"]},
	  {"name": "prod models", "registryScopes": ["registry.acme.example/models/llama"],
	   "signatureVerification": {"level": "permissive", "verifyTimestamp": "afterCertExpiry"},
	   "trustStores": ["ca:acme", "tsa:tsa"], "trustedIdentities": ["` + releaseIdentity + `"]},
	  {"name": "scratch", "registryScopes": ["registry.acme.example/scratch"], "signatureVerification": {"level": "skip"}}
	]}`)
	out, err := referrers.ImportNotation(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := referrers.ParsePolicy(ctx, out, dir)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	rule, _ := p.Match("registry.acme.example/models/llama")
	if rule == nil || rule.Mode != referrers.ModeEnforce || rule.Signatures.Signers[0] != "prod-models" {
		t.Fatalf("specific scope: %+v\n%s", rule, out)
	}
	if a := p.Trust["prod-models"].Notation; a.Level != referrers.NotationLevelPermissive || len(a.TSA) != 1 || a.VerifyTimestamp != "afterCertExpiry" {
		t.Fatalf("anchor %+v", a)
	}
	if rule, _ := p.Match("registry.acme.example/other"); rule == nil || rule.Mode != referrers.ModeAudit {
		t.Fatalf("wildcard (audit level) must come last and report only: %+v\n%s", rule, out)
	}
	if rule, _ := p.Match("registry.acme.example/scratch"); rule == nil || !rule.Reject || rule.Mode != referrers.ModeAudit {
		t.Fatalf("skip level: %+v\n%s", rule, out)
	}
	for _, tc := range []struct{ body, want string }{
		{`{"version": "1.0", "trustPolicies": [{"name": "x", "registryScopes": ["*"], "signatureVerification": {"level": "strict", "override": {"revocation": "log"}}, "trustStores": ["ca:acme"], "trustedIdentities": ["*"]}]}`, "override"},
		{`{"version": "1.0", "trustPolicies": [{"name": "x", "registryScopes": ["*"], "signatureVerification": {"level": "strict"}, "trustStores": ["ca:missing"], "trustedIdentities": ["*"]}]}`, "no folder"},
		{`{"version": "1.0", "trustPolicies": [{"name": "x", "registryScopes": ["*"], "signatureVerification": {"level": "strict"}, "trustStores": ["ca:../acme"], "trustedIdentities": ["*"]}]}`, "TYPE:NAME"},
		{`{"version": "2.0", "trustPolicies": []}`, "version 1.0"},
	} {
		write(tc.body)
		if _, err := referrers.ImportNotation(ctx, dir); !errors.Is(err, referrers.ErrImport) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
}
