package referrers

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	ldap "github.com/go-ldap/ldap/v3"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// X509Constraints narrow which certificates of a trusted PKI may sign, and
// say how revocation is checked. The zero value adds no constraint on the
// subject or SANs, requires the codeSigning extended key usage on the leaf
// and checks no revocation.
type X509Constraints struct {
	// Subject, when set, is a distinguished name in RFC 4514 form
	// ("CN=ml-release,O=Acme"). Each attribute it names must occur exactly
	// once in the leaf's subject, with exactly this value; attributes it
	// does not name (OU, C, …) may be present. Naming one attribute twice
	// is an error.
	Subject string
	// SANs, when set, must all be among the leaf's SANs (email, URI, DNS).
	SANs []string
	// AllowMissingCodeSigningEKU accepts a leaf that carries no extended
	// key usage at all, as some older PKIs issue. By default the leaf must
	// name codeSigning. A leaf whose extended key usages leave codeSigning
	// out (anyExtendedKeyUsage included) is refused either way.
	AllowMissingCodeSigningEKU bool
	// CRLs are certificate revocation lists (PEM or DER). When any is given,
	// every certificate of the chain below the root must be covered by a
	// CRL signed by its issuer and not be listed in it; a CRL past its
	// nextUpdate fails closed.
	CRLs [][]byte
	// CRLGracePeriod is how long after its nextUpdate a CRL is still used
	// (zero: not at all).
	CRLGracePeriod time.Duration
}

// x509Anchor is a compiled company-PKI anchor.
type x509Anchor struct {
	roots   *x509.CertPool
	certs   []*x509.Certificate // the roots file as read (AnchorExpiries)
	c       X509Constraints
	subject []subjectAttr
	crls    []*x509.RevocationList
}

// subjectAttr is one attribute a subject constraint names.
type subjectAttr struct {
	name string // as written, for messages
	oid  asn1.ObjectIdentifier
	want string
}

// dnAttributes are the attribute types of RFC 4514 section 3 and the
// other names certificates commonly carry; any other type is written as a
// dotted OID.
var dnAttributes = map[string]string{
	"CN": "2.5.4.3", "L": "2.5.4.7", "ST": "2.5.4.8", "O": "2.5.4.10", "OU": "2.5.4.11",
	"C": "2.5.4.6", "STREET": "2.5.4.9", "DC": "0.9.2342.19200300.100.1.25",
	"UID": "0.9.2342.19200300.100.1.1", "SERIALNUMBER": "2.5.4.5", "POSTALCODE": "2.5.4.17",
	"EMAILADDRESS": "1.2.840.113549.1.9.1",
}

// parseSubject reads an RFC 4514 subject constraint.
func parseSubject(s string) ([]subjectAttr, error) {
	if s == "" {
		return nil, nil
	}
	dn, err := ldap.ParseDN(s)
	if err != nil {
		return nil, fmt.Errorf("subject %q: %w", s, err)
	}
	var out []subjectAttr
	seen := map[string]string{}
	for _, rdn := range dn.RDNs {
		for _, a := range rdn.Attributes {
			dotted, ok := dnAttributes[strings.ToUpper(a.Type)]
			if !ok {
				dotted = a.Type
			}
			oid, err := parseOID(dotted)
			if err != nil {
				return nil, fmt.Errorf("subject %q: attribute type %q: not a known name (CN, O, OU, C, L, ST, …) or a dotted OID", s, a.Type)
			}
			if first, dup := seen[oid.String()]; dup {
				return nil, fmt.Errorf("subject %q names %s twice (as %s and %s): each attribute is named once", s, oid, first, a.Type)
			}
			seen[oid.String()] = a.Type
			out = append(out, subjectAttr{name: a.Type, oid: oid, want: a.Value})
		}
	}
	return out, nil
}

// parseOID reads a dotted OID ("2.5.4.3").
func parseOID(s string) (asn1.ObjectIdentifier, error) {
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return nil, errors.New("not a dotted OID")
	}
	out := make(asn1.ObjectIdentifier, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || p != strconv.Itoa(n) {
			return nil, errors.New("not a dotted OID")
		}
		out[i] = n
	}
	return out, nil
}

// parseCRLs reads CRLs given as PEM ("X509 CRL" blocks) or DER.
func parseCRLs(files [][]byte) ([]*x509.RevocationList, error) {
	var out []*x509.RevocationList
	for i, raw := range files {
		ders := [][]byte{}
		if bytes.Contains(raw, []byte("-----BEGIN")) {
			for rest := raw; ; {
				var b *pem.Block
				if b, rest = pem.Decode(rest); b == nil {
					break
				}
				if b.Type == "X509 CRL" {
					ders = append(ders, b.Bytes)
				}
			}
			if len(ders) == 0 {
				return nil, fmt.Errorf("crls[%d]: no X509 CRL PEM block", i)
			}
		} else {
			ders = append(ders, raw)
		}
		for _, der := range ders {
			crl, err := x509.ParseRevocationList(der)
			if err != nil {
				return nil, fmt.Errorf("crls[%d]: %w", i, err)
			}
			if crl.NextUpdate.IsZero() {
				// Without nextUpdate a CRL never goes stale: it could be
				// replayed forever after a certificate was revoked.
				return nil, fmt.Errorf("crls[%d] (issuer %s): no nextUpdate", i, crl.Issuer)
			}
			out = append(out, crl)
		}
	}
	return out, nil
}

// NewX509Verifier trusts certificates that chain to one of the roots (PEM)
// through the intermediates the bundle carries, valid now, allowed for
// code signing, not revoked when CRLs are given, and that meet c. A company
// PKI's certificates carry no Fulcio extensions, so the chain is checked
// with crypto/x509 and the DSSE signature with the leaf's key.
func NewX509Verifier(name string, rootsPEM []byte, c X509Constraints) (*Verifier, error) {
	certs, err := cryptoutils.UnmarshalCertificatesFromPEM(rootsPEM)
	if err != nil || len(certs) == 0 {
		return nil, fmt.Errorf("trusted roots %s: no PEM certificate found", name)
	}
	a := &x509Anchor{roots: x509.NewCertPool(), certs: certs, c: c}
	for _, r := range certs {
		a.roots.AddCert(r)
	}
	if a.subject, err = parseSubject(c.Subject); err != nil {
		return nil, fmt.Errorf("x509 anchor %s: %w", name, err)
	}
	if a.crls, err = parseCRLs(c.CRLs); err != nil {
		return nil, fmt.Errorf("x509 anchor %s: %w", name, err)
	}
	if c.CRLGracePeriod < 0 {
		return nil, fmt.Errorf("x509 anchor %s: negative CRL grace period", name)
	}
	return &Verifier{Name: name, x509: a}, nil
}

// verifyX509 checks a bundle signed with a certificate chain. It returns
// when the check stops holding: the earliest NotAfter of the chain that
// verified (leaf, intermediates, root) and, with CRLs, the earliest
// nextUpdate (plus grace) of the CRLs it was checked against.
func (v *Verifier) verifyX509(b *bundle.Bundle) (time.Time, error) {
	leaf, inter, err := bundleCertificates(b)
	if err != nil {
		return time.Time{}, err
	}
	a := v.x509
	now := time.Now()
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: a.roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}})
	if err != nil {
		return time.Time{}, fmt.Errorf("certificate chain: %w", err)
	}
	if err := a.checkEKU(leaf); err != nil {
		return time.Time{}, err
	}
	if err := a.checkSubject(leaf); err != nil {
		return time.Time{}, err
	}
	if err := a.checkSANs(leaf); err != nil {
		return time.Time{}, err
	}
	until, err := a.checkRevocation(chains, now)
	if err != nil {
		return time.Time{}, err
	}
	env := b.GetDsseEnvelope()
	sv, err := signature.LoadDefaultVerifier(leaf.PublicKey)
	if err != nil {
		return time.Time{}, err
	}
	pae := dsse.PAE(env.GetPayloadType(), env.GetPayload())
	if err := sv.VerifySignature(bytes.NewReader(env.GetSignatures()[0].GetSig()), bytes.NewReader(pae)); err != nil {
		return time.Time{}, fmt.Errorf("signature: %w", err)
	}
	return until, nil
}

// chainExpiry is the earliest NotAfter in chain.
func chainExpiry(chain []*x509.Certificate) time.Time {
	var t time.Time
	for _, c := range chain {
		t = earliest(t, c.NotAfter)
	}
	return t
}

// earliest is the earlier of a and b, a zero time meaning "never".
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// bundleCertificates returns the leaf and the intermediates a bundle carries.
func bundleCertificates(b *bundle.Bundle) (*x509.Certificate, *x509.CertPool, error) {
	vm := b.GetVerificationMaterial()
	var ders [][]byte
	if ch := vm.GetX509CertificateChain(); ch != nil {
		for _, c := range ch.GetCertificates() {
			ders = append(ders, c.GetRawBytes())
		}
	} else if c := vm.GetCertificate(); c != nil {
		ders = append(ders, c.GetRawBytes())
	}
	if len(ders) == 0 {
		return nil, nil, errors.New("bundle carries no certificate")
	}
	leaf, err := x509.ParseCertificate(ders[0])
	if err != nil {
		return nil, nil, fmt.Errorf("leaf certificate: %w", err)
	}
	inter := x509.NewCertPool()
	for _, d := range ders[1:] {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			return nil, nil, fmt.Errorf("intermediate certificate: %w", err)
		}
		inter.AddCert(c)
	}
	return leaf, inter, nil
}

// checkEKU requires codeSigning on the leaf itself: crypto/x509 treats a
// leaf with no extended key usage, or with anyExtendedKeyUsage, as good
// for every purpose, which would let a TLS server's certificate sign.
func (a *x509Anchor) checkEKU(leaf *x509.Certificate) error {
	for _, u := range leaf.ExtKeyUsage {
		if u == x509.ExtKeyUsageCodeSigning {
			return nil
		}
	}
	if len(leaf.ExtKeyUsage) == 0 && len(leaf.UnknownExtKeyUsage) == 0 {
		if a.c.AllowMissingCodeSigningEKU {
			return nil
		}
		return errors.New("leaf certificate has no extended key usage; codeSigning is required (an anchor for an older PKI may set allowMissingCodeSigningEKU)")
	}
	return errors.New("leaf certificate's extended key usage does not include codeSigning")
}

// checkSubject applies the subject constraint: each named attribute occurs
// exactly once in the leaf's subject and is equal.
func (a *x509Anchor) checkSubject(leaf *x509.Certificate) error {
	for _, want := range a.subject {
		var got []string
		for _, n := range leaf.Subject.Names {
			if n.Type.Equal(want.oid) {
				s, _ := n.Value.(string)
				got = append(got, s)
			}
		}
		switch {
		case len(got) == 0:
			return fmt.Errorf("certificate subject %q has no %s, want %s=%s", leaf.Subject, want.name, want.name, want.want)
		case len(got) > 1:
			return fmt.Errorf("certificate subject %q has %s %d times; the anchor requires exactly one %s=%s", leaf.Subject, want.name, len(got), want.name, want.want)
		case got[0] != want.want:
			return fmt.Errorf("certificate subject %q has %s=%s, want %s=%s", leaf.Subject, want.name, got[0], want.name, want.want)
		}
	}
	return nil
}

func (a *x509Anchor) checkSANs(leaf *x509.Certificate) error {
	have := map[string]bool{}
	for _, e := range leaf.EmailAddresses {
		have[e] = true
	}
	for _, u := range leaf.URIs {
		have[u.String()] = true
	}
	for _, d := range leaf.DNSNames {
		have[d] = true
	}
	for _, s := range a.c.SANs {
		if !have[s] {
			return fmt.Errorf("certificate has no SAN %q", s)
		}
	}
	return nil
}

// checkRevocation passes when one verified chain has no certificate below
// its root revoked by a current CRL of its issuer. With no CRLs configured
// nothing is checked.
//
// It also returns until when the chain that passed holds: its earliest
// certificate NotAfter and CRL nextUpdate (plus the grace period).
func (a *x509Anchor) checkRevocation(chains [][]*x509.Certificate, now time.Time) (until time.Time, err error) {
	if len(a.crls) == 0 {
		return chainExpiry(chains[0]), nil
	}
	var first error
	for _, chain := range chains {
		crlUntil, err := a.checkChainRevocation(chain, now)
		if err == nil {
			return earliest(chainExpiry(chain), crlUntil), nil
		}
		if first == nil {
			first = err
		}
	}
	return time.Time{}, first
}

func (a *x509Anchor) checkChainRevocation(chain []*x509.Certificate, now time.Time) (time.Time, error) {
	var until time.Time
	for i := 0; i+1 < len(chain); i++ {
		cert, issuer := chain[i], chain[i+1]
		crl, err := a.crlOf(issuer, now)
		if err != nil {
			return time.Time{}, fmt.Errorf("revocation of %q: %w", cert.Subject, err)
		}
		until = earliest(until, crl.NextUpdate.Add(a.c.CRLGracePeriod))
		for _, e := range crl.RevokedCertificateEntries {
			if e.SerialNumber != nil && e.SerialNumber.Cmp(cert.SerialNumber) == 0 {
				what := "intermediate"
				if i == 0 {
					what = "leaf"
				}
				return time.Time{}, fmt.Errorf("%s certificate %q (serial %s) is revoked since %s (CRL of %q)",
					what, cert.Subject, cert.SerialNumber, e.RevocationTime.UTC().Format(time.RFC3339), issuer.Subject)
			}
		}
	}
	return until, nil
}

// crlOf finds a current CRL signed by issuer; none is an error: with CRLs
// configured, a certificate whose revocation cannot be checked is refused.
func (a *x509Anchor) crlOf(issuer *x509.Certificate, now time.Time) (*x509.RevocationList, error) {
	var stale *x509.RevocationList
	for _, crl := range a.crls {
		if !bytes.Equal(crl.RawIssuer, issuer.RawSubject) || crl.CheckSignatureFrom(issuer) != nil {
			continue
		}
		if now.After(crl.NextUpdate.Add(a.c.CRLGracePeriod)) {
			stale = crl
			continue
		}
		return crl, nil
	}
	if stale != nil {
		msg := fmt.Sprintf("the CRL of %q is past its nextUpdate (%s)", issuer.Subject, stale.NextUpdate.UTC().Format(time.RFC3339))
		if a.c.CRLGracePeriod > 0 {
			msg += fmt.Sprintf(" and the %s grace period", a.c.CRLGracePeriod)
		}
		return nil, errors.New(msg)
	}
	return nil, fmt.Errorf("no CRL signed by %q among the anchor's crls", issuer.Subject)
}
