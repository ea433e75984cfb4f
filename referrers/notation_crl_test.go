package referrers_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/referrers"
)

// TestNotationStaleCRLFailsClosed: a CRL file past its nextUpdate cannot
// say a certificate is not revoked (it may have been revoked since), so a
// Notary Project signature whose issuer's only CRL file is stale is
// refused at strict level, with or without a distribution point in the
// certificate, as x509 anchors refuse it. Old code: without a
// distribution point the stale file was taken as a clean bill of health
// and the signature counted.
func TestNotationStaleCRLFailsClosed(t *testing.T) {
	ctx := context.Background()
	for _, cdp := range []string{"http://crl.acme.example/root.crl", ""} {
		ca := regtest.NewNotaryCA(t, "Acme Root")
		leaf := ca.Leaf(t, releaseName, time.Now().Add(-48*time.Hour), time.Now().Add(24*time.Hour), cdp)
		_, subject, env := notarySigned(t, leaf, referrers.NotationSignOptions{})
		der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1),
			ThisUpdate: time.Now().Add(-40 * time.Hour), NextUpdate: time.Now().Add(-16 * time.Hour)}, ca.Cert, ca.Key)
		if err != nil {
			t.Fatal(err)
		}
		stale, _ := x509.ParseRevocationList(der)
		trust := referrers.NotationTrust{CA: []*x509.Certificate{ca.Cert}, TrustedIdentities: []string{releaseIdentity}, CRLs: []*x509.RevocationList{stale}}
		sig, err := notaryVerifier(t, trust).VerifyNotation(ctx, subject, env)
		if err == nil {
			t.Errorf("distribution point %q: a stale CRL file counted as checked: %+v", cdp, sig.Notes)
			continue
		}
		t.Logf("distribution point %q: %v", cdp, err)
		trust.Level = referrers.NotationLevelPermissive
		if sig, err = notaryVerifier(t, trust).VerifyNotation(ctx, subject, env); err != nil || !strings.Contains(strings.Join(sig.Notes, "\n"), "revocation") {
			t.Errorf("permissive: %v %+v", err, sig)
		}
	}
}
