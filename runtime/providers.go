package runtime

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/linuxtsm"
	"github.com/google/go-configfs-tsm/report"
	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/client"
)

// ErrNoTEE is returned when no TEE interface is present on this machine.
var ErrNoTEE = errors.New("no TEE interface present")

// ConfigfsTSM is the Linux TSM report interface (configfs, kernels ≥ 6.7;
// SEV-SNP and TDX), through github.com/google/go-configfs-tsm. Untested on
// hardware: tests drive it through go-configfs-tsm's fake configfs.
type ConfigfsTSM struct {
	// Client is the configfs client; nil: the machine's
	// (/sys/kernel/config/tsm/report).
	Client configfsi.Client
}

// Name implements Provider.
func (c *ConfigfsTSM) Name() string { return "configfs-tsm" }

// Quote implements Provider: REPORT_DATA is the inblob; for SEV-SNP the
// auxblob is the certificate table (VCEK, ASK, ARK) carried for offline
// verification.
func (c *ConfigfsTSM) Quote(ctx context.Context, reportData [64]byte) (*Quote, error) {
	cl := c.Client
	if cl == nil {
		var err error
		if cl, err = linuxtsm.MakeClient(); err != nil {
			return nil, fmt.Errorf("%w: configfs-tsm: %w", ErrNoTEE, err)
		}
	}
	resp, err := report.Get(cl, &report.Request{InBlob: reportData[:], GetAuxBlob: true})
	if err != nil {
		return nil, fmt.Errorf("configfs-tsm report: %w", err)
	}
	switch p := strings.TrimSpace(resp.Provider); p {
	case "sev_guest":
		q := &Quote{Platform: PlatformSEVSNP, Report: resp.OutBlob}
		if len(q.Report) > abi.ReportSize {
			q.Report = q.Report[:abi.ReportSize]
		}
		if q.Certificates, err = certTable(resp.AuxBlob); err != nil {
			return nil, fmt.Errorf("configfs-tsm auxblob: %w", err)
		}
		return q, nil
	case "tdx_guest":
		return &Quote{Platform: PlatformTDX, Report: resp.OutBlob}, nil
	default:
		return nil, fmt.Errorf("configfs-tsm: provider %q is neither sev_guest nor tdx_guest", p)
	}
}

// certTable reads an SEV-SNP GUID certificate table into VCEK, ASK, ARK
// (those present, in that order).
func certTable(raw []byte) ([]*x509.Certificate, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var t abi.CertTable
	if err := t.Unmarshal(raw); err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for _, g := range []string{abi.VcekGUID, abi.AskGUID, abi.ArkGUID} {
		der, err := t.GetByGUIDString(g)
		if err != nil {
			continue
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("certificate %s: %w", g, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// SevGuest is /dev/sev-guest through go-sev-guest's client (the extended
// report carries the certificate table). Untested on hardware.
type SevGuest struct {
	// Device is the opened device; nil: client.OpenDevice().
	Device client.Device
}

// Name implements Provider.
func (s *SevGuest) Name() string { return "sev-guest" }

// Quote implements Provider.
func (s *SevGuest) Quote(ctx context.Context, reportData [64]byte) (*Quote, error) {
	d := s.Device
	if d == nil {
		if _, err := os.Stat("/dev/sev-guest"); err != nil {
			return nil, fmt.Errorf("%w: sev-guest: %w", ErrNoTEE, err)
		}
		var err error
		if d, err = client.OpenDevice(); err != nil {
			return nil, fmt.Errorf("sev-guest: %w", err)
		}
		defer d.Close()
	}
	rep, certs, err := client.GetRawExtendedReport(d, reportData)
	if err != nil {
		return nil, fmt.Errorf("sev-guest: %w", err)
	}
	q := &Quote{Platform: PlatformSEVSNP, Report: rep}
	if q.Certificates, err = certTable(certs); err != nil {
		return nil, fmt.Errorf("sev-guest certificate table: %w", err)
	}
	return q, nil
}

// NewProvider returns the provider named by --tee: configfs-tsm,
// sev-guest, auto (the first present, in that order) or simulated-snp
// (INSECURE; simulatedRoot is its folder).
func NewProvider(name, simulatedRoot string) (Provider, error) {
	switch name {
	case "configfs-tsm":
		return &ConfigfsTSM{}, nil
	case "sev-guest":
		return &SevGuest{}, nil
	case "auto":
		if _, err := os.Stat("/sys/kernel/config/tsm/report"); err == nil {
			return &ConfigfsTSM{}, nil
		}
		if _, err := os.Stat("/dev/sev-guest"); err == nil {
			return &SevGuest{}, nil
		}
		return nil, fmt.Errorf("%w: neither /sys/kernel/config/tsm/report nor /dev/sev-guest (auto never picks %s)", ErrNoTEE, SimulatedName)
	case SimulatedName:
		if simulatedRoot == "" {
			return nil, fmt.Errorf("--tee %s needs --simulated-root DIR", SimulatedName)
		}
		return &Simulated{Dir: simulatedRoot}, nil
	}
	return nil, fmt.Errorf("TEE provider %q: want configfs-tsm, sev-guest, auto or %s", name, SimulatedName)
}
