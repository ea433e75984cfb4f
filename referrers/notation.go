package referrers

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/notaryproject/notation-core-go/signature"
	"github.com/notaryproject/notation-core-go/signature/cose"
	"github.com/notaryproject/notation-core-go/signature/jws"
	"github.com/notaryproject/notation-go"
	notaryverifier "github.com/notaryproject/notation-go/verifier"
	"github.com/notaryproject/notation-go/verifier/trustpolicy"
	"github.com/notaryproject/notation-go/verifier/truststore"
	"github.com/notaryproject/tspclient-go"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"

	"github.com/modelattest/modelattest/internal/pemcert"
)

// Notary Project signatures: what `notation sign` stores, and what AWS
// Signer (ECR) and Harbor make.
const (
	// NotationArtifactType is a Notary Project signature referrer's
	// artifactType (notation writes it as the config media type).
	NotationArtifactType = "application/vnd.cncf.notary.signature"
	// NotationEnvelopeJWS is a JWS signature envelope's layer media type.
	NotationEnvelopeJWS = jws.MediaTypeEnvelope
	// NotationEnvelopeCOSE is a COSE signature envelope's layer media type.
	NotationEnvelopeCOSE = cose.MediaTypeEnvelope
	// AnnotationNotaryThumbprints lists the SHA-256 thumbprints of the
	// signing certificate chain (a hint: the envelope decides).
	AnnotationNotaryThumbprints = "io.cncf.notary.x509chain.thumbprint#S256"

	// notaryPayloadType is the signed payload's content type.
	notaryPayloadType = "application/vnd.cncf.notary.payload.v1+json"
	// notaryStore names every store in the one-policy document built per
	// anchor; the anchor's name may hold characters notation refuses.
	notaryStore = "anchor"
	// notaryScopeRef is the artifact reference handed to notation-go: the
	// policy's rules choose the model, not notation's registry scopes.
	notaryScopeRef = "modelattest.local/model@"
)

// Signature formats a finding names.
const (
	// FormatSigstoreBundle is a Sigstore bundle (cosign v3, our sign/attest).
	FormatSigstoreBundle = "sigstore-bundle"
	// FormatNotationJWS is a Notary Project signature in a JWS envelope.
	FormatNotationJWS = "notation-jws"
	// FormatNotationCOSE is a Notary Project signature in a COSE envelope.
	FormatNotationCOSE = "notation-cose"
)

// Notary Project verification levels an anchor may use. audit and skip
// let an untrusted signature through, so they are rule modes here, never
// anchor levels: see docs/POLICY.md.
const (
	NotationLevelStrict     = "strict"
	NotationLevelPermissive = "permissive"
)

// IsNotationReferrer reports whether a referrer manifest holds a Notary
// Project signature, from its own artifactType or, as notation writes it,
// its config media type.
func IsNotationReferrer(m ocispec.Manifest) bool {
	return m.ArtifactType == NotationArtifactType || (m.ArtifactType == "" && m.Config.MediaType == NotationArtifactType)
}

// NotationEnvelope is a Notary Project signature as read from its referrer
// manifest: the one envelope layer, digest-checked.
type NotationEnvelope struct {
	// MediaType is NotationEnvelopeJWS or NotationEnvelopeCOSE.
	MediaType string
	// Bytes is the envelope.
	Bytes []byte
}

// Format is FormatNotationJWS or FormatNotationCOSE.
func (e *NotationEnvelope) Format() string {
	if e.MediaType == NotationEnvelopeJWS {
		return FormatNotationJWS
	}
	return FormatNotationCOSE
}

// fetchNotationEnvelope reads the one envelope layer of a Notary Project
// signature manifest, bounded like a bundle.
func fetchNotationEnvelope(ctx context.Context, src content.Fetcher, desc ocispec.Descriptor, m *ocispec.Manifest) (*NotationEnvelope, error) {
	if len(m.Layers) != 1 {
		return nil, fmt.Errorf("referrer %s: a Notary Project signature has exactly one envelope layer, this one has %d", desc.Digest, len(m.Layers))
	}
	l := m.Layers[0]
	if l.MediaType != NotationEnvelopeJWS && l.MediaType != NotationEnvelopeCOSE {
		return nil, fmt.Errorf("referrer %s: envelope media type %q is neither %s nor %s", desc.Digest, l.MediaType, NotationEnvelopeJWS, NotationEnvelopeCOSE)
	}
	if l.Size > MaxBundleBytes {
		return nil, fmt.Errorf("referrer %s: envelope of %d bytes is over the %d-byte limit", desc.Digest, l.Size, MaxBundleBytes)
	}
	b, err := content.FetchAll(ctx, src, l)
	if err != nil {
		return nil, fmt.Errorf("referrer %s: envelope: %w", desc.Digest, err)
	}
	return &NotationEnvelope{MediaType: l.MediaType, Bytes: b}, nil
}

// NotationTrust is a Notary Project trust store and the part of a trust
// policy that says whom to trust. The zero value trusts nothing.
type NotationTrust struct {
	// CA holds the root CAs of signatures made under the notary.x509
	// signing scheme.
	CA []*x509.Certificate
	// SigningAuthority holds the roots of the notary.x509.signingAuthority
	// scheme (AWS Signer).
	SigningAuthority []*x509.Certificate
	// TSA holds the roots of trusted RFC 3161 timestamp authorities. With
	// none, a notary.x509 signature counts only while its certificates
	// are valid.
	TSA []*x509.Certificate
	// TrustedIdentities are "x509.subject: DN" entries, or "*" for any
	// certificate under the roots. A DN must name the signing
	// certificate's whole subject (notation itself accepts a subset).
	TrustedIdentities []string
	// Level is NotationLevelStrict (the zero value) or
	// NotationLevelPermissive (an expired signature or certificate and a
	// revoked certificate are reported, not refused).
	Level string
	// VerifyTimestamp is "always" (the zero value) or "afterCertExpiry".
	VerifyTimestamp string
	// CRLs are checked offline for every certificate whose issuer signed
	// one of them. OCSP and fetching CRLs over the network are never done.
	CRLs []*x509.RevocationList
}

// notationVerifier checks Notary Project envelopes against one anchor
// through notation-go's verifier, built once.
type notationVerifier struct {
	v        notation.Verifier
	trust    NotationTrust
	subjects []map[string]string // parsed trusted identities; nil for "*"
}

// NewNotationVerifier trusts Notary Project signatures under a trust store.
// Every failure is found here: a policy never holds an anchor that silently
// trusts nothing.
func NewNotationVerifier(name string, t NotationTrust) (*Verifier, error) {
	if len(t.CA) == 0 && len(t.SigningAuthority) == 0 {
		return nil, errors.New("notation: no ca or signingAuthority roots")
	}
	if len(t.TrustedIdentities) == 0 {
		return nil, errors.New(`notation: no trustedIdentities (list "x509.subject: DN" entries, or "*" for any signer under the roots)`)
	}
	switch t.Level {
	case "":
		t.Level = NotationLevelStrict
	case NotationLevelStrict, NotationLevelPermissive:
	default:
		return nil, fmt.Errorf("notation: level %q: want strict or permissive (audit and skip are rule modes: see docs/POLICY.md)", t.Level)
	}
	nv := &notationVerifier{trust: t}
	for _, id := range t.TrustedIdentities {
		if id == "*" {
			if len(t.TrustedIdentities) > 1 {
				return nil, errors.New(`notation: trustedIdentities "*" must be the only entry`)
			}
			continue
		}
		kind, dn, ok := strings.Cut(id, ":")
		if !ok || strings.TrimSpace(kind) != "x509.subject" || strings.TrimSpace(dn) == "" {
			return nil, fmt.Errorf(`notation: trusted identity %q: want "x509.subject: DN" or "*"`, id)
		}
		attrs, err := parseDN(strings.TrimSpace(dn))
		if err != nil {
			return nil, fmt.Errorf("notation: trusted identity %q: %w", id, err)
		}
		nv.subjects = append(nv.subjects, attrs)
	}
	stores := map[truststore.Type][]*x509.Certificate{}
	var storeNames []string
	for _, s := range []struct {
		typ   truststore.Type
		certs []*x509.Certificate
	}{{truststore.TypeCA, t.CA}, {truststore.TypeSigningAuthority, t.SigningAuthority}, {truststore.TypeTSA, t.TSA}} {
		if len(s.certs) == 0 {
			continue
		}
		if err := truststore.ValidateCertificates(s.certs); err != nil {
			return nil, fmt.Errorf("notation: %s roots: %w", s.typ, err)
		}
		stores[s.typ] = s.certs
		storeNames = append(storeNames, string(s.typ)+":"+notaryStore)
	}
	doc := &trustpolicy.Document{
		Version: "1.0",
		TrustPolicies: []trustpolicy.TrustPolicy{{
			Name:           "modelattest",
			RegistryScopes: []string{"*"},
			SignatureVerification: trustpolicy.SignatureVerification{
				VerificationLevel: t.Level,
				VerifyTimestamp:   trustpolicy.TimestampOption(t.VerifyTimestamp),
			},
			TrustStores: storeNames,
			// Identities are matched by matchIdentity once the chain is
			// trusted: whole subjects, and a reason without Go map syntax.
			TrustedIdentities: []string{"*"},
		}},
	}
	rv := &offlineRevocation{crls: t.CRLs}
	v, err := notaryverifier.NewWithOptions(doc, memTrustStore(stores), nil, notaryverifier.VerifierOptions{
		RevocationCodeSigningValidator:  rv.forPurpose(false),
		RevocationTimestampingValidator: rv.forPurpose(true),
	})
	if err != nil {
		return nil, fmt.Errorf("notation: %w", err)
	}
	nv.v = v
	return &Verifier{Name: name, notation: nv}, nil
}

// memTrustStore is a Notary Project trust store held in memory: each
// anchor is one named store of each type.
type memTrustStore map[truststore.Type][]*x509.Certificate

func (s memTrustStore) GetCertificates(_ context.Context, t truststore.Type, name string) ([]*x509.Certificate, error) {
	if name != notaryStore || len(s[t]) == 0 {
		return nil, fmt.Errorf("no %s trust store %q", t, name)
	}
	return s[t], nil
}

// Claim reads who the envelope says signed it, without verifying
// anything: for listings (discover) and for the reason a signature did not
// count. Trust only what VerifyNotation returns.
func (e *NotationEnvelope) Claim() (signer, scheme string, err error) {
	env, err := signature.ParseEnvelope(e.MediaType, e.Bytes)
	if err != nil {
		return "", "", err
	}
	c, err := env.Content()
	if err != nil {
		return "", "", err
	}
	if len(c.SignerInfo.CertificateChain) == 0 {
		return "", "", errors.New("no certificate in the envelope")
	}
	return c.SignerInfo.CertificateChain[0].Subject.String(), string(c.SignerInfo.SignedAttributes.SigningScheme), nil
}

// NotationClaim is what a Notary Project signature says of itself,
// unverified: for listings such as discover.
type NotationClaim struct {
	Format        string `json:"format"`
	Signer        string `json:"signer"`
	SigningScheme string `json:"signingScheme"`
}

// ReadNotationClaim reads the Notary Project signature referrer desc of
// subject and says who it claims signed it, without verifying it.
func ReadNotationClaim(ctx context.Context, src content.Fetcher, desc ocispec.Descriptor, subject digest.Digest) (*NotationClaim, error) {
	r, err := FetchReferrer(ctx, src, desc, subject)
	if err != nil {
		return nil, err
	}
	if r.Notation == nil {
		return nil, fmt.Errorf("referrer %s is not a Notary Project signature", desc.Digest)
	}
	who, scheme, err := r.Notation.Claim()
	if err != nil {
		return nil, fmt.Errorf("referrer %s: %w", desc.Digest, err)
	}
	return &NotationClaim{Format: r.Notation.Format(), Signer: who, SigningScheme: scheme}, nil
}

// NotationSignature is what a verified Notary Project signature says.
type NotationSignature struct {
	// Format is FormatNotationJWS or FormatNotationCOSE.
	Format string `json:"format"`
	// SigningScheme is notary.x509 or notary.x509.signingAuthority.
	SigningScheme string `json:"signingScheme"`
	// Signer is the signing certificate's subject (RFC 4514).
	Signer string `json:"signer"`
	// SigningTime is the signer's claimed time (authentic under
	// notary.x509.signingAuthority).
	SigningTime time.Time `json:"signingTime"`
	// Timestamp is the time a trusted TSA countersigned, when one did.
	Timestamp *time.Time `json:"timestamp,omitempty"`
	// Notes are what verification did not enforce or could not check:
	// failures a permissive level only reports, revocation not checked.
	Notes []string `json:"notes,omitempty"`

	// key is the signing key's fingerprint: one key is one signer, whether
	// it signs a bundle or a Notary Project signature.
	key string
	// notAfter is the earliest NotAfter of the signing chain, or
	// nextUpdate of a CRL file it was checked against, still to come
	// (zero: none). Without a trusted timestamp the chain must be
	// valid when verified, so its expiry ends the verification; with one,
	// counting it only makes a caller verify again sooner.
	notAfter time.Time
}

// IsNotation reports whether v trusts Notary Project signatures (it then
// never verifies Sigstore bundles, and key and certificate anchors never
// verify Notary Project signatures).
func (v *Verifier) IsNotation() bool { return v.notation != nil }

// VerifyNotation checks a Notary Project envelope against the anchor: its
// integrity, its chain to a trusted root, the trusted identity, expiry, an
// RFC 3161 timestamp from a trusted TSA (which lets a certificate that
// expired since still count), revocation against the anchor's CRL files,
// and that the signed descriptor is subject's digest, size and media type.
func (v *Verifier) VerifyNotation(ctx context.Context, subject ocispec.Descriptor, env *NotationEnvelope) (*NotationSignature, error) {
	if v.notation == nil {
		return nil, fmt.Errorf("%w: %s does not trust Notary Project signatures", ErrVerification, v.Name)
	}
	nv := v.notation
	want := ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	outcome, err := nv.v.Verify(ctx, want, env.Bytes, notation.VerifierVerifyOptions{
		ArtifactReference:  notaryScopeRef + subject.Digest.String(),
		SignatureMediaType: env.MediaType,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrVerification, notationReason(outcome, err, want))
	}
	si := outcome.EnvelopeContent.SignerInfo
	if len(si.CertificateChain) == 0 {
		return nil, fmt.Errorf("%w: the envelope holds no certificate", ErrVerification)
	}
	leaf := si.CertificateChain[0]
	if nv.subjects != nil {
		if err := nv.matchIdentity(leaf); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrVerification, err)
		}
	}
	sig := &NotationSignature{Format: env.Format(), SigningScheme: string(si.SignedAttributes.SigningScheme),
		Signer: leaf.Subject.String(), SigningTime: si.SignedAttributes.SigningTime.UTC(), key: keyFingerprint(leaf.PublicKey)}
	now := time.Now()
	for i, c := range si.CertificateChain {
		if c.NotAfter.After(now) {
			sig.notAfter = earliest(sig.notAfter, c.NotAfter)
		}
		// A CRL file past its nextUpdate no longer vouches (unknown:
		// refused), so the check holds until then.
		if i+1 < len(si.CertificateChain) {
			if crl := crlFor(nv.trust.CRLs, si.CertificateChain[i+1]); crl != nil && crl.NextUpdate.After(now) {
				sig.notAfter = earliest(sig.notAfter, crl.NextUpdate)
			}
		}
	}
	if len(si.UnsignedAttributes.TimestampSignature) > 0 && len(nv.trust.TSA) > 0 {
		if ts, err := timestampTime(si); err == nil {
			sig.Timestamp = &ts
		}
	}
	for _, r := range outcome.VerificationResults {
		if r != nil && r.Error != nil {
			sig.Notes = append(sig.Notes, fmt.Sprintf("%s not enforced (level %s): %v", r.Type, nv.trust.Level, r.Error))
		}
	}
	sig.Notes = append(sig.Notes, revocationCoverage(si.CertificateChain, nv.trust.CRLs))
	return sig, nil
}

// notationReason turns notation-go's outcome into the reason a user reads:
// which check failed, and for a descriptor mismatch what was signed.
func notationReason(outcome *notation.VerificationOutcome, err error, want ocispec.Descriptor) string {
	if outcome != nil && outcome.EnvelopeContent != nil && outcome.Error != nil && outcome.Error.Error() == "content descriptor mismatch" {
		var p struct {
			TargetArtifact ocispec.Descriptor `json:"targetArtifact"`
		}
		if json.Unmarshal(outcome.EnvelopeContent.Payload.Content, &p) == nil {
			got := p.TargetArtifact
			return fmt.Sprintf("the signature is over %s (%d bytes, %s), not this model's manifest %s (%d bytes, %s)",
				got.Digest, got.Size, got.MediaType, want.Digest, want.Size, want.MediaType)
		}
	}
	if outcome != nil && outcome.EnvelopeContent != nil {
		if a, err := outcome.EnvelopeContent.SignerInfo.ExtendedAttribute(notaryverifier.HeaderVerificationPlugin); err == nil {
			// AWS Signer's signatures name a plugin; plugins are never run.
			return fmt.Sprintf("the signature needs the verification plugin %v, and plugins are never run here (docs/POLICY.md)", a.Value)
		}
	}
	if outcome != nil {
		for _, r := range outcome.VerificationResults {
			if r != nil && r.Error != nil && r.Action == trustpolicy.ActionEnforce {
				return fmt.Sprintf("notation %s check: %v", r.Type, r.Error)
			}
		}
	}
	return "notation: " + err.Error()
}

// matchIdentity requires the signing certificate's whole subject to equal
// one trusted identity (DESIGN.md rule 8: X.509 names compare in full).
func (nv *notationVerifier) matchIdentity(leaf *x509.Certificate) error {
	got, err := parseDN(leaf.Subject.String())
	if err != nil {
		return fmt.Errorf("signing certificate subject %q: %w", leaf.Subject, err)
	}
	for _, want := range nv.subjects {
		if len(want) != len(got) {
			continue
		}
		same := true
		for k, v := range want {
			same = same && got[k] == v
		}
		if same {
			return nil
		}
	}
	return fmt.Errorf("signing certificate %q is not one of the trusted identities (%s)", leaf.Subject, strings.Join(nv.trust.TrustedIdentities, "; "))
}

// parseDN reads an RFC 4514 name into attribute type → value. A type
// named twice is refused: the comparison would be ambiguous.
func parseDN(s string) (map[string]string, error) {
	dn, err := ldap.ParseDN(s)
	if err != nil {
		return nil, fmt.Errorf("distinguished name %q: %w", s, err)
	}
	out := map[string]string{}
	for _, rdn := range dn.RDNs {
		for _, a := range rdn.Attributes {
			k := strings.ToUpper(a.Type)
			if _, dup := out[k]; dup {
				return nil, fmt.Errorf("distinguished name %q names %s twice", s, k)
			}
			out[k] = a.Value
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("distinguished name %q is empty", s)
	}
	return out, nil
}

// timestampTime reads the TSA's time from a countersignature notation-go
// has already verified.
func timestampTime(si signature.SignerInfo) (time.Time, error) {
	tok, err := tspclient.ParseSignedToken(si.UnsignedAttributes.TimestampSignature)
	if err != nil {
		return time.Time{}, err
	}
	info, err := tok.Info()
	if err != nil {
		return time.Time{}, err
	}
	ts, err := info.Validate(si.Signature)
	if err != nil {
		return time.Time{}, err
	}
	return ts.Value.UTC(), nil
}

// NotationAnchor is a policy's trust anchor for Notary Project signatures:
// a trust store (files or folders of PEM/DER certificates, as notation's
// truststore/x509/{ca,signingAuthority,tsa}/NAME folders hold them) and
// the trust policy's identities and level.
type NotationAnchor struct {
	// CA lists root CA certificates of the notary.x509 scheme.
	CA []string `json:"ca,omitempty"`
	// SigningAuthority lists roots of notary.x509.signingAuthority.
	SigningAuthority []string `json:"signingAuthority,omitempty"`
	// TSA lists trusted timestamp authority roots.
	TSA []string `json:"tsa,omitempty"`
	// TrustedIdentities are "x509.subject: DN" entries, or ["*"].
	TrustedIdentities []string `json:"trustedIdentities"`
	// Level is strict (default) or permissive.
	Level string `json:"level,omitempty"`
	// VerifyTimestamp is always (default) or afterCertExpiry.
	VerifyTimestamp string `json:"verifyTimestamp,omitempty"`
	// CRLs are CRL files (PEM or DER) checked offline.
	CRLs []string `json:"crls,omitempty"`
}

// loadNotationAnchor loads a `notation:` anchor (anchorKinds).
func loadNotationAnchor(_ context.Context, name string, a Anchor, files policyFiles) (*Verifier, error) {
	return a.Notation.Load(name, files.path)
}

// Load reads the anchor's files; resolve maps a path in the policy to one
// on disk (relative paths are relative to the policy's folder).
func (a *NotationAnchor) Load(name string, resolve func(string) string) (*Verifier, error) {
	t := NotationTrust{TrustedIdentities: a.TrustedIdentities, Level: a.Level, VerifyTimestamp: a.VerifyTimestamp}
	for _, s := range []struct {
		what  string
		paths []string
		out   *[]*x509.Certificate
	}{{"ca", a.CA, &t.CA}, {"signingAuthority", a.SigningAuthority, &t.SigningAuthority}, {"tsa", a.TSA, &t.TSA}} {
		for _, p := range s.paths {
			certs, err := ReadCertificates(resolve(p))
			if err != nil {
				return nil, fmt.Errorf("notation %s: %w", s.what, err)
			}
			*s.out = append(*s.out, certs...)
		}
	}
	for _, p := range a.CRLs {
		crl, err := readCRL(resolve(p))
		if err != nil {
			return nil, fmt.Errorf("notation crls: %w", err)
		}
		t.CRLs = append(t.CRLs, crl)
	}
	return NewNotationVerifier(name, t)
}

// ReadCertificates reads every certificate in a file (PEM, or one DER
// certificate), or in every regular file of a folder, as notation's trust
// store does.
func ReadCertificates(path string) ([]*x509.Certificate, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	files := []string{path}
	if fi.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, err
		}
		files = files[:0]
		for _, e := range entries {
			if e.Type().IsRegular() {
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
		sort.Strings(files)
	}
	var out []*x509.Certificate
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		certs, err := parseCertificates(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		out = append(out, certs...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no certificate", path)
	}
	return out, nil
}

func parseCertificates(raw []byte) ([]*x509.Certificate, error) {
	if !strings.Contains(string(raw), "-----BEGIN") {
		return x509.ParseCertificates(raw)
	}
	out, _, err := pemcert.Parse(raw)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	return out, nil
}

func readCRL(path string) (*x509.RevocationList, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if b, _ := pem.Decode(raw); b != nil {
		raw = b.Bytes
	}
	crl, err := x509.ParseRevocationList(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return crl, nil
}
