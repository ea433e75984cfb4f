package events_test

import (
	"encoding/json"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/modelattest/modelattest/events"
	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/referrers"
)

// TestEventNamesSignatureFormats: a decision event lists the verified
// signatures with their format, and a Notary Project signature's signer
// identity; attestations and unverified signatures are not signatures.
func TestEventNamesSignatureFormats(t *testing.T) {
	rep := report(true, referrers.ModeEnforce)
	m := rep.Model.Digest
	rep.Referrers[0].Format = referrers.FormatSigstoreBundle
	rep.Referrers[1].Format = referrers.FormatSigstoreBundle // provenance: an attestation
	rep.Referrers = append(rep.Referrers,
		referrers.Finding{Digest: digest.FromString("notary"), Subject: m, Depth: 1, Verdict: "verified", VerifiedBy: []string{"notation-release"},
			Format: referrers.FormatNotationCOSE, Signer: "CN=ml-release,O=Acme,ST=WA,C=US"},
		referrers.Finding{Digest: digest.FromString("stranger"), Subject: m, Depth: 1, Verdict: "untrusted",
			Format: referrers.FormatNotationJWS, Signer: "CN=mallory (claimed, not verified)"})
	e := events.FromReport(rep, events.Options{})
	got := e.Data.Unmapped.Signatures
	if len(got) != 2 || got[0].Format != "sigstore-bundle" || got[0].Anchors[0] != "release" ||
		got[1].Format != "notation-cose" || got[1].Identity != "CN=ml-release,O=Acme,ST=WA,C=US" || got[1].Anchors[0] != "notation-release" {
		t.Fatalf("signatures %+v", got)
	}
	b, _ := json.Marshal(e)
	regtest.CheckDecisionEvent(t, b)
}
