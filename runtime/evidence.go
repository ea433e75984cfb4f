package runtime

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// EvidenceFormat names the evidence document's version.
const EvidenceFormat = "modelattest-runtime-evidence/v1"

// Platforms a report comes from.
const (
	PlatformSEVSNP = "sev-snp"
	PlatformTDX    = "tdx"
)

// InsecureWarning is written into evidence made by the simulated provider
// and printed wherever such evidence appears.
const InsecureWarning = "INSECURE: simulated SEV-SNP report signed by a local chain, not by AMD hardware; for demos and tests only"

// Evidence is the JSON document a guest hands a relying party.
type Evidence struct {
	// Format is EvidenceFormat.
	Format string `json:"format"`
	// Platform is PlatformSEVSNP or PlatformTDX.
	Platform string `json:"platform"`
	// Provider names what produced the report (configfs-tsm, sev-guest,
	// simulated-snp).
	Provider string `json:"provider"`
	// Insecure is set, with InsecureWarning in Warning, for simulated
	// evidence.
	Insecure bool   `json:"insecure,omitempty"`
	Warning  string `json:"warning,omitempty"`
	// Model is what the guest loaded.
	Model ModelRef `json:"model"`
	// PolicyDigest is the digest of the policy file the model was verified
	// under ("sha256:…").
	PolicyDigest string `json:"policy_digest"`
	// Nonce is the relying party's challenge, hex.
	Nonce string `json:"nonce"`
	// PublicKey is the DER SubjectPublicKeyInfo of the ephemeral P-256 key
	// a secret may be released to (base64 in JSON); empty when none.
	PublicKey []byte `json:"public_key,omitempty"`
	// Report is the raw TEE report: the 1184-byte SEV-SNP attestation
	// report, or the TDX quote (base64 in JSON).
	Report []byte `json:"report"`
	// Certificates is the PEM chain for offline verification: VCEK, ASK,
	// ARK for SEV-SNP (from the extended report or configfs-tsm's
	// auxblob). The ARK here is never trusted for being here.
	Certificates string `json:"certificates,omitempty"`
	// Verification is the guest's verification report of the model:
	// informative only, a verifier re-walks the referrer graph itself.
	Verification json.RawMessage `json:"verification,omitempty"`
}

// ModelRef names a model by reference and manifest digest.
type ModelRef struct {
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
}

// Quote is what a Provider returns for 64 bytes of REPORT_DATA.
type Quote struct {
	Platform     string
	Report       []byte
	Certificates []*x509.Certificate
	// Insecure marks a simulated quote.
	Insecure bool
}

// Provider is a source of TEE reports.
type Provider interface {
	// Name is the provider's name as given to --tee.
	Name() string
	// Quote asks the TEE for a report over reportData.
	Quote(ctx context.Context, reportData [64]byte) (*Quote, error)
}

// CollectOptions says what to bind into evidence.
type CollectOptions struct {
	// Reference is the model reference as typed (informative).
	Reference string
	// Binding is what REPORT_DATA commits to.
	Binding Binding
	// PublicKey is the DER SPKI of the ephemeral key; its SHA-256 must be
	// Binding.KeyHash. Empty when no key is released.
	PublicKey []byte
	// Verification is the guest's verification report, JSON (optional).
	Verification json.RawMessage
}

// Collect asks p for a report over the binding and returns the evidence.
func Collect(ctx context.Context, p Provider, o CollectOptions) (*Evidence, error) {
	rd, err := o.Binding.ReportData()
	if err != nil {
		return nil, err
	}
	q, err := p.Quote(ctx, rd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.Name(), err)
	}
	ev := &Evidence{
		Format: EvidenceFormat, Platform: q.Platform, Provider: p.Name(),
		Model:        ModelRef{Reference: o.Reference, Digest: o.Binding.ManifestDigest},
		PolicyDigest: o.Binding.PolicyDigest, Nonce: hex.EncodeToString(o.Binding.Nonce),
		PublicKey: o.PublicKey, Report: q.Report, Verification: o.Verification,
	}
	if q.Insecure {
		ev.Insecure, ev.Warning = true, InsecureWarning
	}
	for _, c := range q.Certificates {
		ev.Certificates += string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	return ev, nil
}

// ErrEvidence is wrapped by errors reading an evidence document.
var ErrEvidence = errors.New("evidence")

// ReadEvidence reads and decodes an evidence file, strictly.
func ReadEvidence(file string) (*Evidence, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEvidence, err)
	}
	return ParseEvidence(raw)
}

// ParseEvidence decodes evidence JSON; unknown fields are refused.
func ParseEvidence(raw []byte) (*Evidence, error) {
	var ev Evidence
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEvidence, err)
	}
	if ev.Format != EvidenceFormat {
		return nil, fmt.Errorf("%w: format %q, want %q", ErrEvidence, ev.Format, EvidenceFormat)
	}
	return &ev, nil
}

// WriteEvidence writes ev as indented JSON to file, mode 0644.
func WriteEvidence(file string, ev *Evidence) error {
	raw, err := json.MarshalIndent(ev, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(file, append(raw, '\n'), 0o644)
}
