package referrers

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/notaryproject/notation-core-go/revocation"
	crlutil "github.com/notaryproject/notation-core-go/revocation/crl"
	"github.com/notaryproject/notation-core-go/revocation/purpose"
	"github.com/notaryproject/notation-core-go/revocation/result"
)

// errOffline is what an OCSP request meets: revocation is checked from
// CRL files only, never over the network.
var errOffline = errors.New("OCSP is not checked: revocation is checked offline, from CRL files only")

type noNetwork struct{}

func (noNetwork) RoundTrip(*http.Request) (*http.Response, error) { return nil, errOffline }

// offlineRevocation checks certificate chains against CRL files with
// notation-core-go's own CRL logic (validity of the CRL, reason codes,
// signing time), handing it the file whose issuer signed it instead of a
// download. A certificate whose issuer has no CRL file is not checked; the
// finding says so (revocationCoverage).
type offlineRevocation struct {
	crls []*x509.RevocationList
}

func (o *offlineRevocation) forPurpose(timestamping bool) revocation.Validator {
	p := purpose.CodeSigning
	if timestamping {
		p = purpose.Timestamping
	}
	return &crlValidator{crls: o.crls, purpose: p}
}

type crlValidator struct {
	crls    []*x509.RevocationList
	purpose purpose.Purpose
}

// ValidateContext implements revocation.Validator.
func (v *crlValidator) ValidateContext(ctx context.Context, opts revocation.ValidateContextOptions) ([]*result.CertRevocationResult, error) {
	chain := opts.CertChain
	inner, err := revocation.NewWithOptions(revocation.Options{
		OCSPHTTPClient:   &http.Client{Transport: noNetwork{}},
		CRLFetcher:       &chainFetcher{chain: chain, crls: v.crls},
		CertChainPurpose: v.purpose,
	})
	if err != nil {
		return nil, err
	}
	res, err := inner.ValidateContext(ctx, opts)
	if err != nil {
		return nil, err
	}
	for i := 0; i+1 < len(chain) && i < len(res); i++ {
		crl := crlFor(v.crls, chain[i+1])
		switch {
		case crl == nil:
			// No CRL file for this issuer: not checked (said in the notes),
			// rather than "unknown", which would refuse every certificate
			// that names a distribution point nobody downloaded.
			res[i] = certResult(result.ResultNonRevokable, "")
		case len(chain[i].CRLDistributionPoints) == 0 && listed(crl, chain[i]):
			// notation checks CRLs only through a distribution point; a
			// file given for the issuer applies all the same.
			res[i] = certResult(result.ResultRevoked, "crl file")
		case len(chain[i].CRLDistributionPoints) == 0 && !crl.NextUpdate.IsZero() && crl.NextUpdate.Before(time.Now()):
			// A stale file cannot say the certificate was not revoked
			// since: unknown, as notation says for a distribution point
			// (and as x509 anchors fail closed).
			res[i] = certResult(result.ResultUnknown, "crl file")
		}
	}
	return res, nil
}

func certResult(r result.Result, server string) *result.CertRevocationResult {
	return &result.CertRevocationResult{
		Result:           r,
		ServerResults:    []*result.ServerResult{{Result: r, Server: server, RevocationMethod: result.RevocationMethodCRL}},
		RevocationMethod: result.RevocationMethodCRL,
	}
}

func listed(crl *x509.RevocationList, cert *x509.Certificate) bool {
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(cert.SerialNumber) == 0 {
			return true
		}
	}
	return false
}

// crlFor returns the CRL file issued and signed by issuer, the newest when
// several are.
func crlFor(crls []*x509.RevocationList, issuer *x509.Certificate) *x509.RevocationList {
	var best *x509.RevocationList
	for _, c := range crls {
		if !bytes.Equal(c.RawIssuer, issuer.RawSubject) || c.CheckSignatureFrom(issuer) != nil {
			continue
		}
		if best == nil || c.ThisUpdate.After(best.ThisUpdate) {
			best = c
		}
	}
	return best
}

// chainFetcher answers notation's CRL download for a distribution point
// of a certificate in the chain with the CRL file of that certificate's
// issuer.
type chainFetcher struct {
	chain []*x509.Certificate
	crls  []*x509.RevocationList
}

// Fetch implements crl.Fetcher.
func (f *chainFetcher) Fetch(_ context.Context, url string) (*crlutil.Bundle, error) {
	for i := 0; i+1 < len(f.chain); i++ {
		if !slices.Contains(f.chain[i].CRLDistributionPoints, url) {
			continue
		}
		if c := crlFor(f.crls, f.chain[i+1]); c != nil {
			return &crlutil.Bundle{BaseCRL: c}, nil
		}
	}
	return nil, fmt.Errorf("no CRL file for %s (CRLs are never downloaded)", url)
}

// revocationCoverage says which certificates of a verified chain were
// checked against a CRL file, and what never is.
func revocationCoverage(chain []*x509.Certificate, crls []*x509.RevocationList) string {
	var unchecked []string
	checked := 0
	for i := 0; i+1 < len(chain); i++ {
		if c := crlFor(crls, chain[i+1]); c != nil && !c.NextUpdate.Before(time.Now()) {
			checked++
		} else {
			unchecked = append(unchecked, fmt.Sprintf("%q", chain[i].Subject.String()))
		}
	}
	if len(unchecked) == 0 {
		return fmt.Sprintf("revocation checked against CRL files for all %d certificates below the root (OCSP and online CRLs are never used)", checked)
	}
	return fmt.Sprintf("revocation not checked for %s: no CRL file from the issuer (OCSP and online CRLs are never used)", strings.Join(unchecked, ", "))
}
