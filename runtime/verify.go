package runtime

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/verify/trust"

	"github.com/modelattest/modelattest/referrers"
)

// ErrRefused is wrapped by every refusal of evidence. It wraps
// referrers.ErrVerification, so a CLI maps it to exit code 3.
var ErrRefused = fmt.Errorf("%w: runtime evidence refused", referrers.ErrVerification)

// Step names, in the order Verify checks them.
const (
	StepFormat       = "report format"
	StepChain        = "certificate chain"
	StepRevocation   = "revocation"
	StepSignature    = "report signature"
	StepTCB          = "TCB"
	StepPolicyBits   = "debug and migration"
	StepMeasurement  = "launch measurement"
	StepPolicyDigest = "policy digest"
	StepNonce        = "nonce"
	StepReportData   = "REPORT_DATA"
	StepModel        = "model"
)

// Step is one check's outcome.
type Step struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Result lists the steps checked, up to the first that failed.
type Result struct {
	Passed bool   `json:"passed"`
	Steps  []Step `json:"steps"`
	// Insecure is set when the evidence came from the simulated provider.
	Insecure bool `json:"insecure,omitempty"`
}

// VerifyOptions says what evidence must show.
type VerifyOptions struct {
	// Requirements are the policy's runtime: section.
	Requirements Requirements
	// Roots overrides Requirements.Roots (--tee-roots); when both are
	// empty, AMD's roots embedded in go-sev-guest are trusted.
	Roots []*x509.Certificate
	// Measurements, when set, replace Requirements.Measurements.
	Measurements []string
	// CRL is AMD's revocation list for the product, when the caller has
	// one; nil: revocation is not checked (said in the result).
	CRL *x509.RevocationList
	// Nonce is the challenge the relying party issued.
	Nonce []byte
	// PolicyDigest is the digest of the policy file the verifier holds.
	PolicyDigest string
	// Now is the time certificates are checked at; zero: time.Now().
	Now time.Time
	// VerifyModel re-verifies the model digest against the policy (by
	// re-walking the referrer graph); nil fails the model step, since the
	// guest's own verification report is informative only.
	VerifyModel func(ctx context.Context, reference, digest string) error
}

// Verify checks evidence against opts, step by step. A refusal returns the
// result so far and an error wrapping ErrRefused that names the step.
func Verify(ctx context.Context, ev *Evidence, opts VerifyOptions) (*Result, error) {
	res := &Result{Insecure: ev.Insecure}
	pass := func(name, detail string) { res.Steps = append(res.Steps, Step{name, true, detail}) }
	fail := func(name, format string, a ...any) (*Result, error) {
		d := fmt.Sprintf(format, a...)
		res.Steps = append(res.Steps, Step{name, false, d})
		return res, fmt.Errorf("%w: %s: %s", ErrRefused, name, d)
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}

	var reportData []byte
	switch ev.Platform {
	case PlatformTDX:
		rd, step, err := verifyTDX(ev, opts, now, pass)
		if err != nil {
			return fail(step, "%v", err)
		}
		reportData = rd
	case PlatformSEVSNP:
		rd, step, err := verifySNP(ev, opts, now, pass)
		if err != nil {
			return fail(step, "%v", err)
		}
		reportData = rd
	default:
		return fail(StepFormat, "platform %q: want %s or %s", ev.Platform, PlatformSEVSNP, PlatformTDX)
	}
	return verifyBinding(ctx, ev, opts, reportData, res, pass, fail)
}

// verifySNP runs the SEV-SNP steps (format to measurement) and returns
// the report's REPORT_DATA, or the failed step and why.
func verifySNP(ev *Evidence, opts VerifyOptions, now time.Time, pass func(string, string)) ([]byte, string, error) {
	fail := func(step, format string, a ...any) ([]byte, string, error) {
		return nil, step, fmt.Errorf(format, a...)
	}
	if err := abi.ValidateReportFormat(ev.Report); err != nil || len(ev.Report) != abi.ReportSize {
		return fail(StepFormat, "not an SEV-SNP attestation report (%d bytes, want %d): %v", len(ev.Report), abi.ReportSize, err)
	}
	rep, err := abi.ReportToProto(ev.Report)
	if err != nil {
		return fail(StepFormat, "%v", err)
	}
	pass(StepFormat, fmt.Sprintf("SEV-SNP report version %d", rep.Version))

	vcek, detail, err := verifyChain(ev, opts, now)
	if err != nil {
		return fail(StepChain, "%v", err)
	}
	pass(StepChain, detail)

	if opts.CRL == nil {
		pass(StepRevocation, "revocation not checked offline (no CRL given)")
	} else if d, err := checkCRL(opts.CRL, ev, now); err != nil {
		return fail(StepRevocation, "%v", err)
	} else {
		pass(StepRevocation, d)
	}

	if err := reportSignature(ev.Report, vcek); err != nil {
		return fail(StepSignature, "%v", err)
	}
	pass(StepSignature, "signed by the VCEK (ECDSA P-384, SHA-384)")

	got := tcbOf(rep.ReportedTcb)
	if m := opts.Requirements.MinimumTCB; got.Bootloader < m.Bootloader || got.TEE < m.TEE || got.SNP < m.SNP || got.Microcode < m.Microcode {
		return fail(StepTCB, "reported TCB %+v is below the policy's minimum %+v", got, m)
	}
	pass(StepTCB, fmt.Sprintf("reported TCB %+v ≥ minimum %+v", got, opts.Requirements.MinimumTCB))

	pol, err := abi.ParseSnpPolicy(rep.Policy)
	if err != nil {
		return fail(StepPolicyBits, "%v", err)
	}
	if pol.Debug && !opts.Requirements.DebugAllowed {
		return fail(StepPolicyBits, "the guest policy's DEBUG bit is set (the host can read the guest) and the policy does not allow debug")
	}
	if pol.MigrateMA && !opts.Requirements.MigrationAllowed {
		return fail(StepPolicyBits, "the guest policy's MIGRATE_MA bit is set and the policy does not allow migration")
	}
	pass(StepPolicyBits, fmt.Sprintf("debug %v, migration agent %v", pol.Debug, pol.MigrateMA))

	allowed := opts.Requirements.Measurements
	if len(opts.Measurements) > 0 {
		allowed = opts.Measurements
	}
	mhex := hex.EncodeToString(rep.Measurement)
	if !slices.ContainsFunc(allowed, func(a string) bool {
		b, err := parseMeasurement(a)
		return err == nil && bytes.Equal(b, rep.Measurement)
	}) {
		if len(allowed) == 0 {
			return fail(StepMeasurement, "measurement %s: the policy accepts no measurement (runtime.measurements is empty)", mhex)
		}
		return fail(StepMeasurement, "measurement %s is not in the allowlist (%d accepted)", mhex, len(allowed))
	}
	pass(StepMeasurement, mhex)
	return rep.ReportData, "", nil
}

// verifyBinding runs the steps every platform shares: policy digest,
// nonce, REPORT_DATA, model.
func verifyBinding(ctx context.Context, ev *Evidence, opts VerifyOptions, reportData []byte, res *Result, pass func(string, string), fail func(string, string, ...any) (*Result, error)) (*Result, error) {
	if ev.PolicyDigest != opts.PolicyDigest {
		return fail(StepPolicyDigest, "the evidence was made under policy %s, the verifier holds %s", ev.PolicyDigest, opts.PolicyDigest)
	}
	pass(StepPolicyDigest, opts.PolicyDigest)

	evNonce, err := hex.DecodeString(ev.Nonce)
	if err != nil || !bytes.Equal(evNonce, opts.Nonce) {
		return fail(StepNonce, "the evidence answers nonce %q, not the one issued", ev.Nonce)
	}
	pass(StepNonce, "the issued nonce")

	b := Binding{ManifestDigest: ev.Model.Digest, PolicyDigest: opts.PolicyDigest, Nonce: opts.Nonce}
	if len(ev.PublicKey) > 0 {
		h := sha256.Sum256(ev.PublicKey)
		b.KeyHash = h[:]
	}
	want, err := b.ReportData()
	if err != nil {
		return fail(StepReportData, "%v", err)
	}
	if !reportDataMatches(reportData, want) {
		return fail(StepReportData, "the report's REPORT_DATA is not the binding of model %s, policy %s, this nonce%s", ev.Model.Digest, opts.PolicyDigest, keyNote(ev))
	}
	pass(StepReportData, "binds model, policy, nonce"+keyNote(ev))

	if opts.VerifyModel == nil {
		return fail(StepModel, "no referrer graph to re-verify against (the evidence's own verification report is informative only)")
	}
	if err := opts.VerifyModel(ctx, ev.Model.Reference, ev.Model.Digest); err != nil {
		return fail(StepModel, "%s: %v", ev.Model.Digest, err)
	}
	pass(StepModel, ev.Model.Digest+" satisfies the policy (referrer graph re-walked)")
	res.Passed = true
	return res, nil
}

// reportDataMatches compares a report's 64-byte REPORT_DATA with the
// binding, in constant time.
func reportDataMatches(got []byte, want [64]byte) bool {
	return len(got) == 64 && subtle.ConstantTimeCompare(got, want[:]) == 1
}

func keyNote(ev *Evidence) string {
	if len(ev.PublicKey) > 0 {
		return " and the ephemeral key"
	}
	return ""
}

func tcbOf(v uint64) TCB {
	return TCB{Bootloader: uint8(v), TEE: uint8(v >> 8), SNP: uint8(v >> 48), Microcode: uint8(v >> 56)}
}

// trustedRoots returns the roots to trust and any intermediates they come
// with (AMD's embedded ASKs).
func trustedRoots(opts VerifyOptions) (roots, inter []*x509.Certificate, name string, err error) {
	if len(opts.Roots) > 0 {
		return opts.Roots, nil, "the given roots", nil
	}
	if opts.Requirements.Roots != "" {
		r, err := LoadRoots(opts.Requirements.Roots)
		return r, nil, "the policy's roots", err
	}
	for _, pl := range []string{"Milan", "Genoa", "Turin"} {
		rc, ok := trust.DefaultRootCerts[pl]
		if !ok || rc.ProductCerts == nil {
			continue
		}
		roots = append(roots, rc.ProductCerts.Ark)
		inter = append(inter, rc.ProductCerts.Ask)
	}
	return roots, inter, "AMD's embedded roots", nil
}

// verifyChain verifies the evidence's VCEK up to a trusted root; an ARK
// carried in the evidence counts only as an intermediate candidate, never
// as a root.
func verifyChain(ev *Evidence, opts VerifyOptions, now time.Time) (*x509.Certificate, string, error) {
	certs, err := parsePEMCerts([]byte(ev.Certificates))
	if err != nil || len(certs) == 0 {
		return nil, "", fmt.Errorf("the evidence carries no certificate chain (VCEK first)")
	}
	roots, inter, name, err := trustedRoots(opts)
	if err != nil {
		return nil, "", err
	}
	rp, ip := x509.NewCertPool(), x509.NewCertPool()
	for _, r := range roots {
		rp.AddCert(r)
	}
	for _, c := range append(inter, certs[1:]...) {
		ip.AddCert(c)
	}
	vcek := certs[0]
	if _, ok := vcek.PublicKey.(*ecdsa.PublicKey); !ok {
		return nil, "", fmt.Errorf("the first certificate (VCEK) has no ECDSA key")
	}
	if _, err := vcek.Verify(x509.VerifyOptions{Roots: rp, Intermediates: ip, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, "", fmt.Errorf("VCEK %q does not chain to %s: %w", vcek.Subject.CommonName, name, err)
	}
	return vcek, fmt.Sprintf("VCEK %q chains to %s", vcek.Subject.CommonName, name), nil
}

// checkCRL refuses a chain certificate the CRL revokes; the CRL must be
// signed by a certificate of the chain (AMD's ARK signs its CRL).
func checkCRL(crl *x509.RevocationList, ev *Evidence, now time.Time) (string, error) {
	certs, _ := parsePEMCerts([]byte(ev.Certificates))
	var signed bool
	for _, c := range certs {
		if crl.CheckSignatureFrom(c) == nil {
			signed = true
		}
	}
	if !signed {
		return "", errors.New("the CRL is not signed by the evidence's chain")
	}
	if !crl.NextUpdate.IsZero() && now.After(crl.NextUpdate) {
		return "", fmt.Errorf("the CRL expired at %s", crl.NextUpdate)
	}
	for _, e := range crl.RevokedCertificateEntries {
		for _, c := range certs {
			if c.SerialNumber.Cmp(e.SerialNumber) == 0 && c.Issuer.String() == crl.Issuer.String() {
				return "", fmt.Errorf("certificate %q (serial %s) is revoked", c.Subject.CommonName, c.SerialNumber)
			}
		}
	}
	return "checked against the given CRL", nil
}

// reportSignature checks the report's ECDSA P-384 signature by the VCEK
// over the signed part of the report (bytes 0x000–0x29F).
func reportSignature(report []byte, vcek *x509.Certificate) error {
	if algo := binary.LittleEndian.Uint32(report[0x34:0x38]); algo != abi.SignEcdsaP384Sha384 {
		return fmt.Errorf("signature algorithm %d, want %d (ECDSA P-384 with SHA-384)", algo, abi.SignEcdsaP384Sha384)
	}
	der, err := abi.ReportToSignatureDER(report)
	if err != nil {
		return err
	}
	h := sha512.Sum384(abi.SignedComponent(report))
	if !ecdsa.VerifyASN1(vcek.PublicKey.(*ecdsa.PublicKey), h[:], der) {
		return errors.New("the signature does not verify with the VCEK's key")
	}
	return nil
}
