package runtime

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	tdxabi "github.com/google/go-tdx-guest/abi"
	tdxpb "github.com/google/go-tdx-guest/proto/tdx"
	tdxdata "github.com/google/go-tdx-guest/testing/testdata"
)

// TestVerifyTDXCannedQuote: go-tdx-guest's canned real quote (Sapphire
// Rapids), at the fixed time its chain is valid, passes structure, PCK
// chain, signatures, attributes and MRTD; it is refused at REPORT_DATA,
// since its report data is not a modelattest binding (go-tdx-guest has no
// fake signer, so a chosen REPORT_DATA cannot be tested offline). Refused
// at the chain in 2053 and with one flipped byte.
func TestVerifyTDXCannedQuote(t *testing.T) {
	q, err := tdxabi.QuoteToProto(tdxdata.RawQuote)
	if err != nil {
		t.Fatal(err)
	}
	q4 := q.(*tdxpb.QuoteV4)
	mrtd := hex.EncodeToString(q4.GetTdQuoteBody().GetMrTd())
	// Intel's SGX Root CA, pinned as a relying party would: here taken
	// from the canned quote's own chain (its last certificate).
	chain, err := parsePEMCerts(q4.GetSignedData().GetCertificationData().GetQeReportCertificationData().GetPckCertificateChainData().GetPckCertChain())
	if err != nil || len(chain) != 3 {
		t.Fatalf("canned chain: %v (%d)", err, len(chain))
	}
	intelRoot := chain[2]
	valid := time.Date(2023, time.July, 1, 1, 0, 0, 0, time.UTC)
	roots := []*x509.Certificate{intelRoot}
	run := func(report []byte, now time.Time) (*Result, error) {
		ev := &Evidence{Format: EvidenceFormat, Platform: PlatformTDX, Model: ModelRef{Digest: modelA}, PolicyDigest: polA,
			Nonce: hex.EncodeToString(nonce), Report: report}
		return Verify(context.Background(), ev, VerifyOptions{
			Requirements: Requirements{Measurements: []string{mrtd}, DebugAllowed: true},
			Roots:        roots, Nonce: nonce, PolicyDigest: polA, Now: now,
			VerifyModel: func(context.Context, string, string) error { return nil },
		})
	}
	res, err := run(tdxdata.RawQuote, valid)
	if !errors.Is(err, ErrRefused) || res.Steps[len(res.Steps)-1].Name != StepReportData {
		t.Fatalf("canned quote: %v %+v", err, res)
	}
	for _, s := range res.Steps[:len(res.Steps)-1] {
		if !s.OK {
			t.Fatalf("step %+v", s)
		}
	}
	if res, err := run(tdxdata.RawQuote, time.Date(2053, time.July, 1, 1, 0, 0, 0, time.UTC)); !errors.Is(err, ErrRefused) || res.Steps[len(res.Steps)-1].Name != StepChain {
		t.Fatalf("2053: %v", err)
	}
	flipped := append([]byte(nil), tdxdata.RawQuote...)
	flipped[0x30+0x88] ^= 1 // a byte of the TD quote body (MRTD)
	if res, err := run(flipped, valid); !errors.Is(err, ErrRefused) || res.Steps[len(res.Steps)-1].Name != StepChain {
		t.Fatalf("flipped byte: %v", err)
	}
	// No pinned root, or another root: refused at the chain.
	roots = nil
	if res, err := run(tdxdata.RawQuote, valid); !errors.Is(err, ErrRefused) || res.Steps[len(res.Steps)-1].Name != StepChain {
		t.Fatalf("no roots: %v", err)
	}
	other, err := newSimulatedChain(valid)
	if err != nil {
		t.Fatal(err)
	}
	roots = []*x509.Certificate{other.ark}
	if res, err := run(tdxdata.RawQuote, valid); !errors.Is(err, ErrRefused) || res.Steps[len(res.Steps)-1].Name != StepChain {
		t.Fatalf("another root: %v", err)
	}
}

// TestReportDataComparison: the comparison both platforms use.
func TestReportDataComparison(t *testing.T) {
	want, err := Binding{ManifestDigest: modelA, PolicyDigest: polA, Nonce: nonce}.ReportData()
	if err != nil {
		t.Fatal(err)
	}
	got := append([]byte(nil), want[:]...)
	if !reportDataMatches(got, want) {
		t.Fatal("equal REPORT_DATA refused")
	}
	for i := range got {
		got[i] ^= 0x80
		if reportDataMatches(got, want) {
			t.Fatalf("byte %d flipped: accepted", i)
		}
		got[i] ^= 0x80
	}
	if reportDataMatches(got[:63], want) || reportDataMatches(append(got, 0), want) {
		t.Fatal("wrong length accepted")
	}
}
