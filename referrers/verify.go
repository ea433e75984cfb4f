package referrers

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// ErrVerification is wrapped by every error that refuses a bundle: a bad
// signature, an untrusted signer, a statement about another subject.
var ErrVerification = errors.New("verification failed")

// Verifier checks bundles against one trusted signer: a public key, an
// X.509 root with subject constraints, or a keyless identity.
type Verifier struct {
	// Name identifies the signer in results (the policy's anchor name).
	Name string
	// sv checks key and keyless bundles; built once, reused for every bundle.
	sv     *verify.Verifier
	policy []verify.PolicyOption
	// pub is the trusted public key of a key anchor (legacy signatures).
	pub crypto.PublicKey
	// x509, for a company PKI, replaces sigstore-go's certificate checks
	// (made for Fulcio certificates).
	x509 *x509Anchor
	// notation, for a Notary Project anchor, replaces all of the above.
	notation *notationVerifier
	// material is a keyless anchor's trusted root (AnchorExpiries).
	material root.TrustedMaterial
}

// NewKeyVerifier trusts one public key.
func NewKeyVerifier(name string, pub crypto.PublicKey) (*Verifier, error) {
	sv, err := signature.LoadDefaultVerifier(pub)
	if err != nil {
		return nil, fmt.Errorf("trusted key %s: %w", name, err)
	}
	key := root.NewExpiringKey(sv, time.Time{}, time.Time{})
	material := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) { return key, nil })
	v, err := verify.NewVerifier(material, verify.WithNoObserverTimestamps())
	if err != nil {
		return nil, fmt.Errorf("trusted key %s: %w", name, err)
	}
	return &Verifier{Name: name, sv: v, pub: pub, policy: []verify.PolicyOption{verify.WithKey()}}, nil
}

// LoadKeyVerifier trusts the public key in a PEM file (cosign.pub, a PKIX
// public key) or behind a KMS URI (whose provider the program registers:
// see LoadSigner).
func LoadKeyVerifier(ctx context.Context, name, ref string) (*Verifier, error) {
	var pub crypto.PublicKey
	if strings.Contains(ref, "://") {
		sv, err := kmsSignerVerifier(ctx, ref)
		if err != nil {
			return nil, fmt.Errorf("trusted key %s: %w", ref, err)
		}
		if pub, err = sv.PublicKey(); err != nil {
			return nil, fmt.Errorf("trusted key %s: %w", ref, err)
		}
	} else {
		raw, err := os.ReadFile(ref)
		if err != nil {
			return nil, fmt.Errorf("trusted key: %w", err)
		}
		if pub, err = cryptoutils.UnmarshalPEMToPublicKey(raw); err != nil {
			return nil, fmt.Errorf("trusted key %s: %w", ref, err)
		}
	}
	return NewKeyVerifier(name, pub)
}

// KeylessIdentity is who may sign keylessly: the OIDC issuer and the
// certificate's subject (SAN), each exact or a regular expression. A
// regular expression must match the whole string, as if written between
// ^ and $ (cosign and sigstore-go match anywhere in it unless anchored).
type KeylessIdentity struct {
	Issuer, IssuerRegExp   string
	Subject, SubjectRegExp string
}

// NewKeylessVerifier trusts Fulcio certificates logged in Rekor under the
// trusted root (trusted_root.json) for the given identity.
func NewKeylessVerifier(name string, trustedRootJSON []byte, id KeylessIdentity) (*Verifier, error) {
	tr, err := root.NewTrustedRootFromJSON(trustedRootJSON)
	if err != nil {
		return nil, fmt.Errorf("trusted root %s: %w", name, err)
	}
	return NewKeylessVerifierWithMaterial(name, tr, id)
}

// NewKeylessVerifierWithMaterial is NewKeylessVerifier with trusted material
// already in memory (a private Sigstore deployment, tests).
func NewKeylessVerifierWithMaterial(name string, tm root.TrustedMaterial, id KeylessIdentity) (*Verifier, error) {
	issuerRE, subjectRE := wholeString(id.IssuerRegExp), wholeString(id.SubjectRegExp)
	for _, re := range []string{issuerRE, subjectRE} {
		if re != "" {
			if _, err := regexp.Compile(re); err != nil {
				return nil, fmt.Errorf("keyless identity %s: %w", name, err)
			}
		}
	}
	certID, err := verify.NewShortCertificateIdentity(id.Issuer, issuerRE, id.Subject, subjectRE)
	if err != nil {
		return nil, fmt.Errorf("keyless identity %s: %w", name, err)
	}
	v, err := verify.NewVerifier(tm, verify.WithTransparencyLog(1), verify.WithIntegratedTimestamps(1))
	if err != nil {
		return nil, fmt.Errorf("keyless identity %s: %w", name, err)
	}
	return &Verifier{Name: name, sv: v, material: tm, policy: []verify.PolicyOption{verify.WithCertificateIdentity(certID)}}, nil
}

// signingKey names the key that made a verified bundle's signature: the
// anchor's key for a key anchor, else the leaf certificate's key. Distinct
// signers are counted by it, so one key is one signer whatever it is called.
func (v *Verifier) signingKey(b *bundle.Bundle) string {
	if v.pub != nil {
		return keyFingerprint(v.pub)
	}
	leaf, _, err := bundleCertificates(b)
	if err != nil {
		return ""
	}
	return keyFingerprint(leaf.PublicKey)
}

// keyFingerprint is the sha256 of a public key's PKIX encoding ("" when it
// has none).
func keyFingerprint(pub crypto.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	return digest.FromBytes(der).String()
}

// wholeString anchors a regular expression to the whole string: an
// unanchored `ml-release@acme\.example` would accept
// ml-release@acme.example.evil.test.
func wholeString(re string) string {
	if re == "" {
		return ""
	}
	return "^(?:" + re + ")$"
}

// Verify checks bundleJSON: its signature against the trusted signer, and
// that its in-toto statement names subject. It returns the statement.
func (v *Verifier) Verify(bundleJSON []byte, subject digest.Digest) (*Statement, error) {
	b, err := checkBundle(bundleJSON)
	if err != nil {
		return nil, err
	}
	return v.verifySubject(b, subject)
}

// VerifyStatementOnly checks the signature of a bundle whose statement
// subject is not a manifest digest (an OpenSSF model-signing root, which
// CheckOMS then recomputes from the files). It must not be used alone.
func (v *Verifier) VerifyStatementOnly(bundleJSON []byte) (*Statement, error) {
	b, err := checkBundle(bundleJSON)
	if err != nil {
		return nil, err
	}
	return v.verifyParsed(b, verify.WithoutArtifactUnsafe(), "")
}

// checkBundle parses a bundle and checks what does not depend on the
// signer: a DSSE envelope of an in-toto statement, with one signature.
func checkBundle(bundleJSON []byte) (*bundle.Bundle, error) {
	b, err := ParseBundle(bundleJSON)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrVerification, err)
	}
	env := b.GetDsseEnvelope()
	if env == nil {
		return nil, fmt.Errorf("%w: bundle holds no DSSE envelope", ErrVerification)
	}
	if env.GetPayloadType() != PayloadTypeInToto {
		return nil, fmt.Errorf("%w: payload type %q is not in-toto", ErrVerification, env.GetPayloadType())
	}
	if n := len(env.GetSignatures()); n != 1 {
		// A second signature, good or bad, is never counted: one bundle is
		// one signer.
		return nil, fmt.Errorf("%w: envelope has %d signatures, want exactly 1", ErrVerification, n)
	}
	return b, nil
}

// verifySubject verifies a checked bundle whose statement must name subject.
func (v *Verifier) verifySubject(b *bundle.Bundle, subject digest.Digest) (*Statement, error) {
	raw, err := hex.DecodeString(subject.Encoded())
	if err != nil || subject.Validate() != nil {
		return nil, fmt.Errorf("subject %q: not a digest", subject)
	}
	return v.verifyParsed(b, verify.WithArtifactDigest(subject.Algorithm().String(), raw), subject)
}

func (v *Verifier) verifyParsed(b *bundle.Bundle, artifact verify.ArtifactPolicyOption, subject digest.Digest) (*Statement, error) {
	st, _, err := v.verifyParsedUntil(b, artifact, subject)
	return st, err
}

// verifySubjectUntil is verifySubject, also returning until when the
// verification holds (see verifyParsedUntil).
func (v *Verifier) verifySubjectUntil(b *bundle.Bundle, subject digest.Digest) (*Statement, time.Time, error) {
	raw, err := hex.DecodeString(subject.Encoded())
	if err != nil || subject.Validate() != nil {
		return nil, time.Time{}, fmt.Errorf("subject %q: not a digest", subject)
	}
	return v.verifyParsedUntil(b, verify.WithArtifactDigest(subject.Algorithm().String(), raw), subject)
}

// verifyParsedUntil verifies a checked bundle and returns, besides its
// statement, the earliest time a certificate (or CRL) the verification
// rested on stops being valid; zero when none does (a plain key). A
// company PKI's chain is checked at the current time, so its expiry ends
// the verification. A Fulcio leaf is checked at its transparency log
// entry's time, so once expired it no longer matters; while it is still
// valid its NotAfter is returned all the same, which only makes a caller
// verify again sooner.
func (v *Verifier) verifyParsedUntil(b *bundle.Bundle, artifact verify.ArtifactPolicyOption, subject digest.Digest) (*Statement, time.Time, error) {
	if v.notation != nil {
		return nil, time.Time{}, fmt.Errorf("%w: %s: trusts Notary Project signatures, not Sigstore bundles", ErrVerification, v.Name)
	}
	var until time.Time
	if v.x509 != nil {
		t, err := v.verifyX509(b)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("%w: %s: %w", ErrVerification, v.Name, err)
		}
		until = t
	} else if _, err := v.sv.Verify(b, verify.NewPolicy(artifact, v.policy...)); err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: %s: %w", ErrVerification, v.Name, err)
	} else if v.pub == nil {
		if leaf, _, err := bundleCertificates(b); err == nil && leaf.NotAfter.After(time.Now()) {
			until = leaf.NotAfter
		}
	}
	st, err := ParseStatement(b.GetDsseEnvelope().GetPayload())
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: %w", ErrVerification, err)
	}
	if subject != "" && !st.Names(subject) {
		return nil, time.Time{}, fmt.Errorf("%w: statement does not name %s", ErrVerification, subject)
	}
	return st, until, nil
}
