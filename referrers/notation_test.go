package referrers_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/notaryproject/notation-core-go/signature"
	"github.com/notaryproject/notation-go/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

var releaseName = pkix.Name{CommonName: "ml-release", Organization: []string{"Acme"}, Province: []string{"WA"}, Country: []string{"US"}}

const releaseIdentity = "x509.subject: CN=ml-release, O=Acme, ST=WA, C=US"

// notarySigned pushes a model to a new layout, signs it with leaf through
// SignNotation and returns the model and the envelope read back.
func notarySigned(t *testing.T, leaf *regtest.NotaryLeaf, opts referrers.NotationSignOptions) (*oras.Target, ocispec.Descriptor, *referrers.NotationEnvelope) {
	t.Helper()
	ctx := context.Background()
	tgt, err := oras.OpenLayout(filepath.Join(t.TempDir(), "layout"))
	if err != nil {
		t.Fatal(err)
	}
	subject := model(t, tgt)
	s, err := referrers.NewNotationSigner(leaf.Key, leaf.Chain)
	if err != nil {
		t.Fatal(err)
	}
	res, err := referrers.SignNotation(ctx, tgt, subject, s, opts)
	if err != nil {
		t.Fatal(err)
	}
	r, err := referrers.FetchReferrer(ctx, tgt, res.Referrer, subject.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if r.Notation == nil {
		t.Fatalf("referrer %s read back as a bundle, not a Notary Project signature", res.Referrer.Digest)
	}
	return tgt, subject, r.Notation
}

func notaryVerifier(t *testing.T, trust referrers.NotationTrust) *referrers.Verifier {
	t.Helper()
	v, err := referrers.NewNotationVerifier("notation-release", trust)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestNotationSignVerify: both envelopes round-trip, in notation's layout.
func TestNotationSignVerify(t *testing.T) {
	ca := regtest.NewNotaryCA(t, "Acme Root")
	leaf := ca.Leaf(t, releaseName, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), "")
	v := notaryVerifier(t, referrers.NotationTrust{CA: []*x509.Certificate{ca.Cert}, TrustedIdentities: []string{releaseIdentity}})
	for _, tc := range []struct{ envelope, format string }{
		{"", referrers.FormatNotationCOSE},
		{referrers.NotationEnvelopeJWS, referrers.FormatNotationJWS},
	} {
		t.Run(tc.format, func(t *testing.T) {
			tgt, subject, env := notarySigned(t, leaf, referrers.NotationSignOptions{EnvelopeType: tc.envelope})
			sig, err := v.VerifyNotation(context.Background(), subject, env)
			if err != nil {
				t.Fatal(err)
			}
			if sig.Format != tc.format || sig.Signer != "CN=ml-release,O=Acme,ST=WA,C=US" || sig.SigningScheme != "notary.x509" {
				t.Fatalf("got %+v", sig)
			}
			// Stored as notation stores it: config media type is the
			// artifact type, one envelope layer, the thumbprint annotation.
			refs, err := oras.Referrers(context.Background(), tgt, subject, "")
			if err != nil || len(refs) != 1 {
				t.Fatalf("referrers %v, %v", refs, err)
			}
			m, _, err := oras.FetchManifest(context.Background(), tgt, refs[0])
			if err != nil {
				t.Fatal(err)
			}
			if m.Config.MediaType != referrers.NotationArtifactType || m.Annotations[referrers.AnnotationNotaryThumbprints] == "" ||
				m.Layers[0].MediaType != map[string]string{referrers.FormatNotationCOSE: "application/cose", referrers.FormatNotationJWS: "application/jose+json"}[tc.format] {
				t.Fatalf("signature manifest %+v", m)
			}
		})
	}
}

// TestNotationSignWithCosignKey: a key signed through its sigstore signer
// (a cosign key file here; a KMS key takes the same path) makes envelopes
// notation verifies: the DER signature is turned into COSE's and JWS's r||s.
func TestNotationSignWithCosignKey(t *testing.T) {
	dir := t.TempDir()
	keyPath, pubPath, err := referrers.GenerateKeyPair(filepath.Join(dir, "cosign"), []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, _ := os.ReadFile(pubPath)
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	ca := regtest.NewNotaryCA(t, "Acme Root")
	leaf := ca.LeafFor(t, pub, releaseName, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), "")
	chain := regtest.WritePEM(t, filepath.Join(dir, "chain.pem"), leaf.Chain...)
	chainPEM, _ := os.ReadFile(chain)
	s, err := referrers.LoadNotationSigner(context.Background(), keyPath, chainPEM, func() ([]byte, error) { return []byte("pw"), nil })
	if err != nil {
		t.Fatal(err)
	}
	v := notaryVerifier(t, referrers.NotationTrust{CA: []*x509.Certificate{ca.Cert}, TrustedIdentities: []string{releaseIdentity}})
	for _, mt := range []string{referrers.NotationEnvelopeCOSE, referrers.NotationEnvelopeJWS} {
		tgt, err := oras.OpenLayout(filepath.Join(t.TempDir(), "layout"))
		if err != nil {
			t.Fatal(err)
		}
		subject := model(t, tgt)
		res, err := referrers.SignNotation(context.Background(), tgt, subject, s, referrers.NotationSignOptions{EnvelopeType: mt})
		if err != nil {
			t.Fatalf("%s: %v", mt, err)
		}
		r, err := referrers.FetchReferrer(context.Background(), tgt, res.Referrer, subject.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.VerifyNotation(context.Background(), subject, r.Notation); err != nil {
			t.Fatalf("%s: %v", mt, err)
		}
	}
	other := ca.Leaf(t, releaseName, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), "")
	otherPEM, _ := os.ReadFile(regtest.WritePEM(t, filepath.Join(dir, "other.pem"), other.Chain...))
	if _, err := referrers.LoadNotationSigner(context.Background(), keyPath, otherPEM, func() ([]byte, error) { return []byte("pw"), nil }); err == nil || !strings.Contains(err.Error(), "is not for this key") {
		t.Fatalf("a chain for another key: got %v", err)
	}
}

// TestNotationRefusals: each way a Notary Project signature must not
// count, each with its reason.
func TestNotationRefusals(t *testing.T) {
	ctx := context.Background()
	ca := regtest.NewNotaryCA(t, "Acme Root")
	other := regtest.NewNotaryCA(t, "Other Root")
	now := time.Now()
	good := ca.Leaf(t, releaseName, now.Add(-time.Hour), now.Add(24*time.Hour), "")
	trusted := referrers.NotationTrust{CA: []*x509.Certificate{ca.Cert}, TrustedIdentities: []string{releaseIdentity}}

	_, subject, env := notarySigned(t, good, referrers.NotationSignOptions{})
	cases := []struct {
		name  string
		trust referrers.NotationTrust
		env   func() *referrers.NotationEnvelope
		subj  func() ocispec.Descriptor
		want  string
	}{
		{name: "tampered envelope", want: "integrity", env: func() *referrers.NotationEnvelope {
			b := append([]byte(nil), env.Bytes...)
			b[len(b)-10] ^= 0xff // inside the signature
			return &referrers.NotationEnvelope{MediaType: env.MediaType, Bytes: b}
		}},
		{name: "another digest", want: "the signature is over " + subject.Digest.String(), subj: func() ocispec.Descriptor {
			d := subject
			d.Digest = digest.FromString("another model")
			return d
		}},
		{name: "another size", want: "not this model's manifest", subj: func() ocispec.Descriptor {
			d := subject
			d.Size++
			return d
		}},
		{name: "another media type", want: "not this model's manifest", subj: func() ocispec.Descriptor {
			d := subject
			d.MediaType = ocispec.MediaTypeImageIndex
			return d
		}},
		{name: "untrusted root", want: "authenticity", trust: referrers.NotationTrust{CA: []*x509.Certificate{other.Cert}, TrustedIdentities: []string{releaseIdentity}}},
		{name: "identity outside the list", want: "is not one of the trusted identities", trust: referrers.NotationTrust{CA: []*x509.Certificate{ca.Cert},
			TrustedIdentities: []string{"x509.subject: CN=ml-qa, O=Acme, ST=WA, C=US"}}},
		// notation accepts a trusted identity naming a subset of the
		// subject; DESIGN.md rule 8 compares names in full.
		{name: "identity naming part of the subject", want: "is not one of the trusted identities", trust: referrers.NotationTrust{CA: []*x509.Certificate{ca.Cert},
			TrustedIdentities: []string{"x509.subject: O=Acme, ST=WA, C=US"}}},
		{name: "signingAuthority root for a notary.x509 signature", want: "authenticity", trust: referrers.NotationTrust{SigningAuthority: []*x509.Certificate{ca.Cert},
			TrustedIdentities: []string{"*"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			trust, e, s := trusted, env, subject
			if tc.trust.TrustedIdentities != nil {
				trust = tc.trust
			}
			if tc.env != nil {
				e = tc.env()
			}
			if tc.subj != nil {
				s = tc.subj()
			}
			_, err := notaryVerifier(t, trust).VerifyNotation(ctx, s, e)
			if !errors.Is(err, referrers.ErrVerification) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a refusal containing %q", err, tc.want)
			}
		})
	}
	// The control: the same signature under the trusted anchor counts.
	if _, err := notaryVerifier(t, trusted).VerifyNotation(ctx, subject, env); err != nil {
		t.Fatal(err)
	}
}

// TestNotationRevocation: a CRL file revokes, at strict level; permissive
// reports it; without a file the finding says revocation was not checked.
func TestNotationRevocation(t *testing.T) {
	ctx := context.Background()
	for _, cdp := range []string{"http://crl.acme.example/root.crl", ""} {
		name := "with distribution point"
		if cdp == "" {
			name = "without distribution point"
		}
		t.Run(name, func(t *testing.T) {
			ca := regtest.NewNotaryCA(t, "Acme Root")
			leaf := ca.Leaf(t, releaseName, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), cdp)
			_, subject, env := notarySigned(t, leaf, referrers.NotationSignOptions{})
			clean, _ := x509.ParseRevocationList(ca.CRL(t))
			ca.Revoke(leaf)
			revoked, _ := x509.ParseRevocationList(ca.CRL(t))
			base := referrers.NotationTrust{CA: []*x509.Certificate{ca.Cert}, TrustedIdentities: []string{releaseIdentity}}

			sig, err := notaryVerifier(t, base).VerifyNotation(ctx, subject, env)
			if err != nil || !strings.Contains(strings.Join(sig.Notes, "\n"), "revocation not checked") {
				t.Fatalf("no CRL file: %v %+v", err, sig)
			}
			withCRL := base
			withCRL.CRLs = []*x509.RevocationList{clean}
			if sig, err = notaryVerifier(t, withCRL).VerifyNotation(ctx, subject, env); err != nil || !strings.Contains(strings.Join(sig.Notes, "\n"), "revocation checked") {
				t.Fatalf("clean CRL: %v %+v", err, sig)
			}
			withCRL.CRLs = []*x509.RevocationList{revoked}
			if _, err = notaryVerifier(t, withCRL).VerifyNotation(ctx, subject, env); err == nil || !strings.Contains(err.Error(), "revoked") {
				t.Fatalf("revoked: got %v", err)
			}
			withCRL.Level = referrers.NotationLevelPermissive
			if sig, err = notaryVerifier(t, withCRL).VerifyNotation(ctx, subject, env); err != nil || !strings.Contains(strings.Join(sig.Notes, "\n"), "revoked") {
				t.Fatalf("permissive: %v %+v", err, sig)
			}
		})
	}
}

// TestNotationTimestamp: a certificate that has expired since signing
// counts only when a trusted TSA countersigned while it was valid.
func TestNotationTimestamp(t *testing.T) {
	ctx := context.Background()
	ca := regtest.NewNotaryCA(t, "Acme Root")
	tsa := regtest.NewTSA(t, time.Now().Add(-24*time.Hour))
	untrustedTSA := regtest.NewTSA(t, time.Now().Add(-24*time.Hour))
	expires := time.Now().Add(4 * time.Second).Truncate(time.Second)
	leaf := ca.Leaf(t, releaseName, time.Now().Add(-time.Hour), expires, "")
	_, subject, stamped := notarySigned(t, leaf, referrers.NotationSignOptions{TimestampURL: tsa.URL, TSARoots: []*x509.Certificate{tsa.Root}})
	_, subject2, bare := notarySigned(t, leaf, referrers.NotationSignOptions{EnvelopeType: referrers.NotationEnvelopeJWS})
	time.Sleep(time.Until(expires) + 1500*time.Millisecond)

	trust := referrers.NotationTrust{CA: []*x509.Certificate{ca.Cert}, TSA: []*x509.Certificate{tsa.Root}, TrustedIdentities: []string{releaseIdentity}}
	sig, err := notaryVerifier(t, trust).VerifyNotation(ctx, subject, stamped)
	if err != nil || sig.Timestamp == nil {
		t.Fatalf("timestamped before expiry: %v %+v", err, sig)
	}
	if _, err := notaryVerifier(t, trust).VerifyNotation(ctx, subject2, bare); err == nil || !strings.Contains(err.Error(), "no timestamp countersignature") {
		t.Fatalf("expired, no timestamp: got %v", err)
	}
	noTSA := trust
	noTSA.TSA = nil
	if _, err := notaryVerifier(t, noTSA).VerifyNotation(ctx, subject, stamped); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired, no TSA trusted: got %v", err)
	}
	other := trust
	other.TSA = []*x509.Certificate{untrustedTSA.Root}
	if _, err := notaryVerifier(t, other).VerifyNotation(ctx, subject, stamped); err == nil || !strings.Contains(err.Error(), "timestamp") {
		t.Fatalf("timestamp from an untrusted TSA: got %v", err)
	}
}

// TestNotationSigningAuthority: the notary.x509.signingAuthority scheme
// (AWS Signer's) verifies against signingAuthority roots, not ca ones.
func TestNotationSigningAuthority(t *testing.T) {
	t.Run("needs a verification plugin", func(t *testing.T) { signingAuthority(t, true) })
	signingAuthority(t, false)
}

func signingAuthority(t *testing.T, plugin bool) {
	ctx := context.Background()
	ca := regtest.NewNotaryCA(t, "Signing Authority Root")
	leaf := ca.Leaf(t, releaseName, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), "")
	tgt, err := oras.OpenLayout(filepath.Join(t.TempDir(), "layout"))
	if err != nil {
		t.Fatal(err)
	}
	subject := model(t, tgt)
	ls, err := signature.NewLocalSigner(leaf.Chain, leaf.Key)
	if err != nil {
		t.Fatal(err)
	}
	payload := `{"targetArtifact":{"mediaType":"` + subject.MediaType + `","digest":"` + subject.Digest.String() + `","size":` + strconv.FormatInt(subject.Size, 10) + `}}`
	envl, _ := signature.NewEnvelope(referrers.NotationEnvelopeCOSE)
	req := &signature.SignRequest{Payload: signature.Payload{ContentType: "application/vnd.cncf.notary.payload.v1+json", Content: []byte(payload)},
		Signer: ls, SigningTime: time.Now(), SigningScheme: signature.SigningSchemeX509SigningAuthority, SigningAgent: "test"}
	if plugin {
		req.ExtendedSignedAttributes = []signature.Attribute{{Key: "io.cncf.notary.verificationPlugin", Value: "com.amazonaws.signer.notation.plugin", Critical: true}}
	}
	blob, err := envl.Sign(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := registry.NewRepository(tgt).PushSignature(ctx, referrers.NotationEnvelopeCOSE, blob, subject, nil); err != nil {
		t.Fatal(err)
	}
	env := &referrers.NotationEnvelope{MediaType: referrers.NotationEnvelopeCOSE, Bytes: blob}
	sa := notaryVerifier(t, referrers.NotationTrust{SigningAuthority: []*x509.Certificate{ca.Cert}, TrustedIdentities: []string{releaseIdentity}})
	sig, err := sa.VerifyNotation(ctx, subject, env)
	if plugin {
		if err == nil || !strings.Contains(err.Error(), "verification plugin com.amazonaws.signer.notation.plugin, and plugins are never run") {
			t.Fatalf("got %v", err)
		}
		return
	}
	if err != nil || sig.SigningScheme != "notary.x509.signingAuthority" {
		t.Fatalf("%v %+v", err, sig)
	}
	caOnly := notaryVerifier(t, referrers.NotationTrust{CA: []*x509.Certificate{ca.Cert}, TrustedIdentities: []string{releaseIdentity}})
	if _, err := caOnly.VerifyNotation(ctx, subject, env); err == nil {
		t.Fatal("a signingAuthority signature verified against a ca trust store")
	}
}

// TestNotationAnchorLoadErrors: an anchor that would trust nothing, or
// trust blindly, does not load.
func TestNotationAnchorLoadErrors(t *testing.T) {
	dir := t.TempDir()
	ca := regtest.NewNotaryCA(t, "Acme Root")
	root := regtest.WritePEM(t, filepath.Join(dir, "root.pem"), ca.Cert)
	os.WriteFile(filepath.Join(dir, "junk.pem"), []byte("not a certificate"), 0o644)
	resolve := func(p string) string { return filepath.Join(dir, p) }
	for _, tc := range []struct {
		name string
		a    referrers.NotationAnchor
		want string
	}{
		{"no roots", referrers.NotationAnchor{TrustedIdentities: []string{"*"}}, "no ca or signingAuthority roots"},
		{"no identities", referrers.NotationAnchor{CA: []string{"root.pem"}}, "no trustedIdentities"},
		{"audit level", referrers.NotationAnchor{CA: []string{"root.pem"}, TrustedIdentities: []string{"*"}, Level: "audit"}, "rule modes"},
		{"bad identity", referrers.NotationAnchor{CA: []string{"root.pem"}, TrustedIdentities: []string{"CN=x"}}, "x509.subject"},
		{"unreadable root", referrers.NotationAnchor{CA: []string{"missing.pem"}, TrustedIdentities: []string{"*"}}, "missing.pem"},
		{"junk root", referrers.NotationAnchor{CA: []string{"junk.pem"}, TrustedIdentities: []string{"*"}}, "junk.pem"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.a.Load("n", resolve); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := (&referrers.NotationAnchor{CA: []string{filepath.Base(root)}, TrustedIdentities: []string{"*"}}).Load("n", resolve); err != nil {
		t.Fatal(err)
	}
}

// TestNotationKMSSigner: an ECDSA key behind a KMS URI (hashivault://,
// against the stand-in transit engine) with its certificate given signs
// Notary Project signatures in both envelopes; the key leaves nothing to
// the signer but the KMS's signing call.
func TestNotationKMSSigner(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var signs atomic.Int32
	srv := regtest.VaultTransit(t, key, &signs)
	t.Setenv("VAULT_ADDR", srv.URL)
	t.Setenv("VAULT_TOKEN", "test-token")
	ctx := context.Background()
	ca := regtest.NewNotaryCA(t, "Acme Root")
	leaf := ca.LeafFor(t, key.Public(), releaseName, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), "")
	chainPEM, _ := os.ReadFile(regtest.WritePEM(t, filepath.Join(t.TempDir(), "chain.pem"), leaf.Chain...))
	s, err := referrers.LoadNotationSigner(ctx, "hashivault://model-release", chainPEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := notaryVerifier(t, referrers.NotationTrust{CA: []*x509.Certificate{ca.Cert}, TrustedIdentities: []string{releaseIdentity}})
	for _, mt := range []string{referrers.NotationEnvelopeCOSE, referrers.NotationEnvelopeJWS} {
		tgt, err := oras.OpenLayout(filepath.Join(t.TempDir(), "layout"))
		if err != nil {
			t.Fatal(err)
		}
		subject := model(t, tgt)
		res, err := referrers.SignNotation(ctx, tgt, subject, s, referrers.NotationSignOptions{EnvelopeType: mt})
		if err != nil {
			t.Fatalf("%s: %v", mt, err)
		}
		r, err := referrers.FetchReferrer(ctx, tgt, res.Referrer, subject.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.VerifyNotation(ctx, subject, r.Notation); err != nil {
			t.Fatalf("%s: %v", mt, err)
		}
	}
	if signs.Load() != 2 {
		t.Fatalf("the KMS signed %d times, want 2", signs.Load())
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	wrong := ca.LeafFor(t, other.Public(), releaseName, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), "")
	wrongPEM, _ := os.ReadFile(regtest.WritePEM(t, filepath.Join(t.TempDir(), "wrong.pem"), wrong.Chain...))
	if _, err := referrers.LoadNotationSigner(ctx, "hashivault://model-release", wrongPEM, nil); err == nil || !strings.Contains(err.Error(), "is not for this key") {
		t.Fatalf("a certificate for another key: got %v", err)
	}
}
