package referrers_test

import (
	"context"
	"errors"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/referrers"
)

// otherCA trusts the stand-in's log but another Fulcio's CA.
type otherCA struct {
	root.TrustedMaterial
	ca root.CertificateAuthority
}

func (m otherCA) FulcioCertificateAuthorities() []root.CertificateAuthority {
	return []root.CertificateAuthority{m.ca}
}

// TestKeylessEndToEnd signs keylessly through our Fulcio and Rekor clients
// against in-process stand-ins speaking their HTTP APIs (no network), stores
// the bundle as a referrer, and verifies it for the right identity only.
func TestKeylessEndToEnd(t *testing.T) {
	ctx := context.Background()
	ss := regtest.NewSigstore(t)
	s, err := referrers.NewKeylessSigner(ctx, referrers.KeylessOptions{FulcioURL: ss.FulcioURL, RekorURL: ss.RekorURL, IDToken: ss.Token(t, regtest.TestIdentity)})
	if err != nil {
		t.Fatal(err)
	}
	tgt, subject, bundle := signedModel(t, s)
	good := []referrers.KeylessIdentity{
		{Issuer: regtest.TestIssuer, Subject: regtest.TestIdentity},
		{Issuer: regtest.TestIssuer, SubjectRegExp: `^[a-z-]+@acme\.example$`},
	}
	for _, id := range good {
		v, err := referrers.NewKeylessVerifier("ml-platform", ss.TrustedRootJSON, id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(bundle, subject.Digest); err != nil {
			t.Fatalf("%+v: %v", id, err)
		}
	}
	bad := []referrers.KeylessIdentity{
		{Issuer: regtest.TestIssuer, Subject: "intern@acme.example"},
		{Issuer: "https://token.actions.githubusercontent.com", Subject: regtest.TestIdentity},
		{Issuer: regtest.TestIssuer, SubjectRegExp: `^admin@`},
	}
	for _, id := range bad {
		v, _ := referrers.NewKeylessVerifierWithMaterial("ml-platform", ss.Material, id)
		if _, err := v.Verify(bundle, subject.Digest); !errors.Is(err, referrers.ErrVerification) {
			t.Errorf("%+v: err = %v", id, err)
		}
	}
	// Another Fulcio's CA is not trusted.
	v, _ := referrers.NewKeylessVerifierWithMaterial("x", otherCA{ss.Material, regtest.OtherFulcioCA(t)}, good[0])
	if _, err := v.Verify(bundle, subject.Digest); !errors.Is(err, referrers.ErrVerification) {
		t.Errorf("untrusted CA: err = %v", err)
	}
	if s.Identity != "keyless "+regtest.TestIdentity {
		t.Errorf("Identity = %q", s.Identity)
	}
	_ = tgt
}

// TestKeylessSignerAsksFulcioUpFront: the certificate is requested within
// the constructor's context, so a token Fulcio refuses, or a context that
// has ended, fails before anything is signed or pushed.
func TestKeylessSignerAsksFulcioUpFront(t *testing.T) {
	ss := regtest.NewSigstore(t)
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	for name, tc := range map[string]struct {
		ctx   context.Context
		token string
	}{
		"token from another identity provider": {context.Background(), regtest.ForeignToken(t, regtest.TestIdentity)},
		"context ended":                        {ended, ss.Token(t, regtest.TestIdentity)},
	} {
		s, err := referrers.NewKeylessSigner(tc.ctx, referrers.KeylessOptions{FulcioURL: ss.FulcioURL, RekorURL: ss.RekorURL, IDToken: tc.token})
		if err == nil || s != nil {
			t.Errorf("%s: signer %v, err %v", name, s, err)
		}
		if name == "context ended" && !errors.Is(err, context.Canceled) {
			t.Errorf("%s: err = %v, want context.Canceled in the chain", name, err)
		}
	}
}
