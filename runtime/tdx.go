package runtime

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	tdxabi "github.com/google/go-tdx-guest/abi"
	tdxpb "github.com/google/go-tdx-guest/proto/tdx"
	tdxverify "github.com/google/go-tdx-guest/verify"
)

// verifyTDX runs the TDX steps on a quote (v4): its structure, the PCK
// chain carried in the quote up to Intel's SGX root (embedded in
// pinned: opts.Roots or the policy's), and the quote's signatures, at now, with no
// collateral and no revocation (both need Intel's PCS); then the TD's
// DEBUG attribute and MRTD against the allowlist. It returns REPORT_DATA.
//
// Untested on hardware; tested on go-tdx-guest's canned real quote only.
func verifyTDX(ev *Evidence, opts VerifyOptions, now time.Time, pass func(string, string)) ([]byte, string, error) {
	q, err := tdxabi.QuoteToProto(ev.Report)
	if err != nil {
		return nil, StepFormat, fmt.Errorf("not a TDX quote: %w", err)
	}
	q4, ok := q.(*tdxpb.QuoteV4)
	if !ok {
		return nil, StepFormat, fmt.Errorf("TDX quote of type %T: only version 4 is verified", q)
	}
	pass(StepFormat, "TDX quote version 4")
	vo := &tdxverify.Options{Now: now}
	roots := opts.Roots
	if len(roots) == 0 && opts.Requirements.Roots != "" {
		if roots, err = LoadRoots(opts.Requirements.Roots); err != nil {
			return nil, StepChain, err
		}
	}
	// Roots are required: go-tdx-guest would fall back to its embedded
	// Intel root with a warning written to stdout by a process-wide logger
	// its init sets up, which would corrupt --format json output.
	if len(roots) == 0 {
		return nil, StepChain, fmt.Errorf("TDX evidence needs pinned roots (Intel's SGX Root CA PEM: --tee-roots or runtime.roots)")
	}
	vo.TrustedRoots = x509.NewCertPool()
	for _, r := range roots {
		vo.TrustedRoots.AddCert(r)
	}
	if err := tdxverify.TdxQuote(q4, vo); err != nil {
		return nil, StepChain, fmt.Errorf("PCK chain or quote signature: %w", err)
	}
	pass(StepChain, "PCK chain to the given roots; quote and QE report signatures verify")
	pass(StepRevocation, "revocation not checked offline (TDX: no PCK CRL)")
	if m := opts.Requirements.MinimumTCB; m != (TCB{}) {
		return nil, StepTCB, fmt.Errorf("a TCB floor is set and TDX TCB levels need Intel's collateral, which is not checked offline")
	}
	pass(StepTCB, "not checked for TDX (needs Intel's TCB info collateral); no floor set")
	body := q4.GetTdQuoteBody()
	if attr := body.GetTdAttributes(); len(attr) > 0 && attr[0]&1 != 0 && !opts.Requirements.DebugAllowed {
		return nil, StepPolicyBits, fmt.Errorf("the TD's DEBUG attribute is set and the policy does not allow debug")
	}
	pass(StepPolicyBits, "TD attributes "+hex.EncodeToString(body.GetTdAttributes()))
	allowed := opts.Requirements.Measurements
	if len(opts.Measurements) > 0 {
		allowed = opts.Measurements
	}
	mrtd := body.GetMrTd()
	if !slices.ContainsFunc(allowed, func(a string) bool { b, err := parseMeasurement(a); return err == nil && bytes.Equal(b, mrtd) }) {
		return nil, StepMeasurement, fmt.Errorf("MRTD %s is not in the allowlist (%d accepted)", hex.EncodeToString(mrtd), len(allowed))
	}
	pass(StepMeasurement, "MRTD "+hex.EncodeToString(mrtd))
	return body.GetReportData(), "", nil
}
