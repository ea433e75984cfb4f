package runtime

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-sev-guest/abi"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
)

// SimulatedName is the simulated provider's name: INSECURE.
const SimulatedName = "simulated-snp"

// SimulatedMeasurement is the launch measurement the simulated provider
// reports unless told another: SHA-384 of a fixed label, so a demo policy
// can pin it.
var SimulatedMeasurement = func() []byte {
	h := sha512.Sum384([]byte("modelattest simulated-snp launch (INSECURE)"))
	return h[:]
}()

// SimulatedTCB is the TCB the simulated provider reports.
var SimulatedTCB = TCB{Bootloader: 4, TEE: 0, SNP: 22, Microcode: 213}

// Simulated is the INSECURE simulated-snp provider: it lays out a real
// SEV-SNP attestation report (go-sev-guest's abi package) and signs it
// with a VCEK of its own chain, ARK → ASK → VCEK, created on first use
// under Dir. Dir/roots.pem is the ARK a verifier would have to trust (and
// must never trust in production).
type Simulated struct {
	// Dir holds the chain and its keys (created 0700; keys 0600).
	Dir string
	// Measurement is the launch measurement to report (48 bytes); nil:
	// SimulatedMeasurement.
	Measurement []byte
	// Debug sets the guest policy's DEBUG bit (a guest the host can read).
	Debug bool
	// MigrateMA sets the guest policy's MIGRATE_MA bit.
	MigrateMA bool
}

// Name implements Provider.
func (s *Simulated) Name() string { return SimulatedName }

// simulatedChain is the chain and the VCEK key.
type simulatedChain struct {
	ark, ask, vcek *x509.Certificate
	key            *ecdsa.PrivateKey
}

// Quote implements Provider.
func (s *Simulated) Quote(ctx context.Context, reportData [64]byte) (*Quote, error) {
	ch, err := s.chain()
	if err != nil {
		return nil, err
	}
	m := s.Measurement
	if m == nil {
		m = SimulatedMeasurement
	}
	if len(m) != 48 {
		return nil, fmt.Errorf("%s: measurement is %d bytes, want 48", SimulatedName, len(m))
	}
	tcb := uint64(SimulatedTCB.Microcode)<<56 | uint64(SimulatedTCB.SNP)<<48 | uint64(SimulatedTCB.TEE)<<8 | uint64(SimulatedTCB.Bootloader)
	r := &spb.Report{
		Version:         2,
		Policy:          abi.SnpPolicyToBytes(abi.SnpPolicy{ABIMajor: 1, ABIMinor: 55, SMT: true, Debug: s.Debug, MigrateMA: s.MigrateMA}),
		FamilyId:        make([]byte, 16),
		ImageId:         make([]byte, 16),
		SignatureAlgo:   abi.SignEcdsaP384Sha384,
		CurrentTcb:      tcb,
		ReportedTcb:     tcb,
		CommittedTcb:    tcb,
		LaunchTcb:       tcb,
		ReportData:      reportData[:],
		Measurement:     m,
		HostData:        make([]byte, 32),
		IdKeyDigest:     make([]byte, 48),
		AuthorKeyDigest: make([]byte, 48),
		ReportId:        make([]byte, 32),
		ReportIdMa:      make([]byte, 32),
		ChipId:          make([]byte, 64),
		Signature:       make([]byte, abi.SignatureSize),
	}
	if _, err := rand.Read(r.ReportId); err != nil {
		return nil, err
	}
	raw, err := abi.ReportToAbiBytes(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", SimulatedName, err)
	}
	h := sha512.Sum384(abi.SignedComponent(raw))
	R, S, err := ecdsa.Sign(rand.Reader, ch.key, h[:])
	if err != nil {
		return nil, err
	}
	if err := abi.SetSignature(R, S, raw); err != nil {
		return nil, err
	}
	return &Quote{Platform: PlatformSEVSNP, Report: raw, Certificates: []*x509.Certificate{ch.vcek, ch.ask, ch.ark}, Insecure: true}, nil
}

// RootsFile is where the simulated ARK is written under Dir.
func (s *Simulated) RootsFile() string { return filepath.Join(s.Dir, "roots.pem") }

// chain loads the chain from Dir, or creates it when Dir holds none.
func (s *Simulated) chain() (*simulatedChain, error) {
	if s.Dir == "" {
		return nil, fmt.Errorf("%s: no --simulated-root folder", SimulatedName)
	}
	chainFile, keyFile := filepath.Join(s.Dir, "chain.pem"), filepath.Join(s.Dir, "vcek.key")
	if raw, err := os.ReadFile(chainFile); err == nil {
		certs, err := parsePEMCerts(raw)
		if err != nil || len(certs) != 3 {
			return nil, fmt.Errorf("%s: %s: want VCEK, ASK and ARK certificates", SimulatedName, chainFile)
		}
		kraw, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", SimulatedName, err)
		}
		b, _ := pem.Decode(kraw)
		if b == nil {
			return nil, fmt.Errorf("%s: %s is not PEM", SimulatedName, keyFile)
		}
		k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", SimulatedName, keyFile, err)
		}
		ek, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%s: %s is not an ECDSA key", SimulatedName, keyFile)
		}
		return &simulatedChain{vcek: certs[0], ask: certs[1], ark: certs[2], key: ek}, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", SimulatedName, err)
	}
	ch, err := newSimulatedChain(time.Now())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", SimulatedName, err)
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("%s: %w", SimulatedName, err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(ch.key)
	if err != nil {
		return nil, err
	}
	pemOf := func(cs ...*x509.Certificate) []byte {
		var out []byte
		for _, c := range cs {
			out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
		return out
	}
	// The key and the chain first, roots.pem last: a chain.pem without
	// its key is refused above rather than silently re-made.
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600},
		{chainFile, pemOf(ch.vcek, ch.ask, ch.ark), 0o644},
		{s.RootsFile(), pemOf(ch.ark), 0o644},
	} {
		if err := os.WriteFile(f.name, f.data, f.mode); err != nil {
			return nil, fmt.Errorf("%s: %w", SimulatedName, err)
		}
	}
	return ch, nil
}

// newSimulatedChain makes ARK and ASK (RSA, signed RSA-PSS SHA-384 as
// AMD's are; 2048-bit rather than AMD's 4096 to keep tests quick) and a
// P-384 VCEK.
func newSimulatedChain(now time.Time) (*simulatedChain, error) {
	arkKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	askKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	vcekKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, err
	}
	mk := func(serial int64, cn string, pub crypto.PublicKey, parent *x509.Certificate, signer crypto.Signer, ca bool) (*x509.Certificate, error) {
		t := &x509.Certificate{
			SerialNumber:          big.NewInt(serial),
			Subject:               pkix.Name{CommonName: cn, Organization: []string{"modelattest simulated-snp (INSECURE)"}},
			NotBefore:             now.Add(-time.Hour),
			NotAfter:              now.Add(25 * 365 * 24 * time.Hour),
			SignatureAlgorithm:    x509.SHA384WithRSAPSS,
			BasicConstraintsValid: true,
			IsCA:                  ca,
			KeyUsage:              x509.KeyUsageDigitalSignature,
		}
		if ca {
			t.KeyUsage |= x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		}
		if parent == nil {
			parent = t
		}
		der, err := x509.CreateCertificate(rand.Reader, t, parent, pub, signer)
		if err != nil {
			return nil, err
		}
		return x509.ParseCertificate(der)
	}
	ark, err := mk(1, "SIMULATED-ARK-INSECURE", &arkKey.PublicKey, nil, arkKey, true)
	if err != nil {
		return nil, err
	}
	ask, err := mk(2, "SIMULATED-ASK-INSECURE", &askKey.PublicKey, ark, arkKey, true)
	if err != nil {
		return nil, err
	}
	vcek, err := mk(3, "SIMULATED-VCEK-INSECURE", &vcekKey.PublicKey, ask, askKey, false)
	if err != nil {
		return nil, err
	}
	return &simulatedChain{ark: ark, ask: ask, vcek: vcek, key: vcekKey}, nil
}
