package referrers

import (
	"crypto/x509"
	"fmt"
	"sort"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
)

// AnchorExpiry is one date after which part of a trust anchor stops
// vouching for anything: a root or intermediate certificate's NotAfter, a
// Sigstore trusted root's CA or log validity end, a CRL's NextUpdate.
type AnchorExpiry struct {
	// Anchor is the policy's name for the trust anchor.
	Anchor string
	// What names the part that expires, for a person: the certificate's
	// subject and serial, the CA's or log's URL, the CRL's issuer.
	What string
	// NotAfter is when it stops working.
	NotAfter time.Time
}

// AnchorExpiries lists, for a compiled policy, every date at which a part
// of one of its trust anchors stops working:
//   - x509 and notation anchors: each root and intermediate certificate
//     (NotAfter) and each CRL (NextUpdate);
//   - keyless anchors: each certificate authority, timestamping authority
//     and transparency log of the trusted root whose validity has an end.
//
// Leaf certificates (a Fulcio leaf lives minutes) and plain keys (they do
// not expire) are not listed. The result is sorted by anchor, then date,
// then What; a Policy never compiled has none.
func (p *Policy) AnchorExpiries() []AnchorExpiry {
	var out []AnchorExpiry
	for name, v := range p.verifiers {
		add := func(what string, t time.Time) {
			if !t.IsZero() {
				out = append(out, AnchorExpiry{Anchor: name, What: what, NotAfter: t})
			}
		}
		certs := func(cs []*x509.Certificate) {
			for _, c := range cs {
				if c == nil || !c.IsCA {
					continue // a leaf: not what an anchor's lifetime hangs on
				}
				kind := "intermediate"
				if c.CheckSignatureFrom(c) == nil && string(c.RawSubject) == string(c.RawIssuer) {
					kind = "root"
				}
				add(fmt.Sprintf("%s certificate %q (serial %s)", kind, c.Subject.String(), c.SerialNumber), c.NotAfter)
			}
		}
		crls := func(ls []*x509.RevocationList) {
			for _, l := range ls {
				add(fmt.Sprintf("CRL of %q (number %v) nextUpdate", l.Issuer.String(), l.Number), l.NextUpdate)
			}
		}
		switch {
		case v.x509 != nil:
			certs(v.x509.certs)
			crls(v.x509.crls)
		case v.notation != nil:
			t := v.notation.trust
			certs(t.CA)
			certs(t.SigningAuthority)
			certs(t.TSA)
			crls(t.CRLs)
		case v.material != nil:
			for _, ca := range v.material.FulcioCertificateAuthorities() {
				if f, ok := ca.(*root.FulcioCertificateAuthority); ok {
					add(fmt.Sprintf("trusted root certificate authority %s validFor end", f.URI), f.ValidityPeriodEnd)
				}
			}
			for _, ta := range v.material.TimestampingAuthorities() {
				if s, ok := ta.(*root.SigstoreTimestampingAuthority); ok {
					add(fmt.Sprintf("trusted root timestamping authority %s validFor end", s.URI), s.ValidityPeriodEnd)
				}
			}
			for kind, logs := range map[string]map[string]*root.TransparencyLog{"transparency log": v.material.RekorLogs(), "CT log": v.material.CTLogs()} {
				for _, l := range logs {
					add(fmt.Sprintf("trusted root %s %s validFor end", kind, l.BaseURL), l.ValidityPeriodEnd)
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Anchor != b.Anchor {
			return a.Anchor < b.Anchor
		}
		if !a.NotAfter.Equal(b.NotAfter) {
			return a.NotAfter.Before(b.NotAfter)
		}
		return a.What < b.What
	})
	return out
}
