package runtime

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/modelattest/modelattest/internal/pemcert"
)

// ErrRequirements is wrapped by every error in a policy's runtime: section.
var ErrRequirements = errors.New("runtime policy")

// Requirements are the TEE requirements of a policy file, its runtime:
// section. The verifier and the broker read them; their flags only
// override them. The zero value accepts no measurement at all: a relying
// party must pin what it runs.
type Requirements struct {
	// Measurements are the accepted launch measurements, hex (48 bytes for
	// SEV-SNP). A report whose measurement is not listed is refused.
	Measurements []string `yaml:"measurements" json:"measurements,omitempty"`
	// MinimumTCB is the floor of the reported TCB, each component alone
	// (zero: no floor).
	MinimumTCB TCB `yaml:"minimum_tcb" json:"minimum_tcb"`
	// DebugAllowed accepts guests whose policy lets the host decrypt them
	// (the SEV-SNP DEBUG bit). Never in production; false refuses them.
	DebugAllowed bool `yaml:"debug_allowed" json:"debug_allowed,omitempty"`
	// MigrationAllowed accepts guests with a migration agent (MIGRATE_MA);
	// false refuses them.
	MigrationAllowed bool `yaml:"migration_allowed" json:"migration_allowed,omitempty"`
	// Roots is a PEM file of the accepted root certificates (AMD ARKs),
	// relative to the policy's folder; empty: AMD's roots embedded in
	// go-sev-guest.
	Roots string `yaml:"roots" json:"roots,omitempty"`
}

// TCB is an SEV-SNP TCB version by component (security patch levels).
type TCB struct {
	Bootloader uint8 `yaml:"bootloader" json:"bootloader"`
	TEE        uint8 `yaml:"tee" json:"tee"`
	SNP        uint8 `yaml:"snp" json:"snp"`
	Microcode  uint8 `yaml:"microcode" json:"microcode"`
}

// LoadRequirements reads the runtime: section of a policy file, strictly
// (unknown keys refused by their exact spelling), and resolves Roots
// against the file's folder. A policy without the section yields the zero
// Requirements, which accept no measurement.
func LoadRequirements(file string) (Requirements, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return Requirements{}, fmt.Errorf("%w: %w", ErrRequirements, err)
	}
	r, err := ParseRequirements(raw)
	if err != nil {
		return r, fmt.Errorf("%s: %w", file, err)
	}
	if r.Roots != "" && !filepath.IsAbs(r.Roots) {
		r.Roots = filepath.Join(filepath.Dir(file), r.Roots)
	}
	return r, nil
}

// ParseRequirements is LoadRequirements for a policy's text; Roots is left
// as written.
func ParseRequirements(raw []byte) (Requirements, error) {
	var doc struct {
		Runtime yaml.Node `yaml:"runtime"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return Requirements{}, fmt.Errorf("%w: %w", ErrRequirements, err)
	}
	var r Requirements
	if doc.Runtime.Kind == 0 {
		return r, nil
	}
	sub, err := yaml.Marshal(&doc.Runtime)
	if err != nil {
		return r, fmt.Errorf("%w: %w", ErrRequirements, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(sub))
	dec.KnownFields(true)
	if err := dec.Decode(&r); err != nil && !errors.Is(err, io.EOF) {
		return Requirements{}, fmt.Errorf("%w: runtime: %w", ErrRequirements, err)
	}
	for i, m := range r.Measurements {
		if _, err := parseMeasurement(m); err != nil {
			return Requirements{}, fmt.Errorf("%w: runtime.measurements[%d]: %w", ErrRequirements, i, err)
		}
	}
	return r, nil
}

// parseMeasurement reads a hex SEV-SNP launch measurement (48 bytes).
func parseMeasurement(s string) ([]byte, error) {
	b, err := decodeHex(s)
	if err != nil {
		return nil, err
	}
	if len(b) != 48 {
		return nil, fmt.Errorf("measurement %q is %d bytes, want 48 (SHA-384)", s, len(b))
	}
	return b, nil
}

// LoadRoots reads a PEM file of root certificates.
func LoadRoots(file string) ([]*x509.Certificate, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%w: roots: %w", ErrRequirements, err)
	}
	certs, err := parsePEMCerts(raw)
	if err != nil || len(certs) == 0 {
		return nil, fmt.Errorf("%w: roots %s: no PEM certificate (%v)", ErrRequirements, file, err)
	}
	return certs, nil
}

func parsePEMCerts(raw []byte) ([]*x509.Certificate, error) {
	out, rest, err := pemcert.Parse(raw)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(rest)) > 0 && len(out) == 0 {
		return nil, fmt.Errorf("not PEM")
	}
	return out, nil
}

func decodeHex(s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("%q is not hex: %w", s, err)
	}
	return b, nil
}
