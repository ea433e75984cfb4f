package runtime

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/faketsm"
	"github.com/google/go-sev-guest/abi"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	sevtest "github.com/google/go-sev-guest/testing"

	"github.com/modelattest/modelattest/referrers"
)

// The worked example of docs/RUNTIME.md, pinned (and checked by an
// independent Python one-liner when it was written).
func TestBindingWorkedExample(t *testing.T) {
	b := Binding{
		ManifestDigest: "sha256:" + strings.Repeat("0", 64),
		PolicyDigest:   "sha256:" + strings.Repeat("1", 64),
		Nonce:          []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
	}
	enc, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if len(enc) != 200 || hex.EncodeToString(enc[:26]) != "000000166d6f64656c6174746573742d72756e74696d652d7631" {
		t.Fatalf("encoding: %d bytes, %x", len(enc), enc[:26])
	}
	rd, _ := b.ReportData()
	if got := hex.EncodeToString(rd[:]); got != "f671078953c7608ae177e7795fd15fe55ee59741510177c6f1fecd21750c8bf3f1c9e33f995f5c9e6e54cea956fee5bd3e6e541ad2f8fc38afb4861c172dc34f" {
		t.Fatalf("REPORT_DATA without key = %s", got)
	}
	kh := sha256.Sum256([]byte("example key"))
	b.KeyHash = kh[:]
	rd, _ = b.ReportData()
	if got := hex.EncodeToString(rd[:]); got != "9c6d9010edcf24532658f6e40215b153b697baf33864d43c6994de5c3c976a1dc0752d0ef65c64bfad91872f3a264426cadbee2182d270d7736d05f1141fcb00" {
		t.Fatalf("REPORT_DATA with key = %s", got)
	}
	// Length prefixes: moving a byte between fields changes the result.
	b2 := b
	b2.ManifestDigest, b2.PolicyDigest = b.ManifestDigest+"1", strings.TrimSuffix(b.PolicyDigest, "1")
	if rd2, _ := b2.ReportData(); rd2 == rd {
		t.Fatal("binding is not injective")
	}
}

const (
	modelA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	modelB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	polA   = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
	polB   = "sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
)

var nonce = []byte("0123456789abcdef")

// fakeChainEvidence makes evidence with go-sev-guest's test-only AMD chain
// and CreateRawReport, with the chosen REPORT_DATA, signed by its VCEK.
func fakeChainEvidence(t *testing.T, debug bool, measurement []byte) (*Evidence, VerifyOptions) {
	t.Helper()
	now := time.Now()
	signer, err := sevtest.DefaultTestOnlyCertChain("Milan", now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	rd, err := Binding{ManifestDigest: modelA, PolicyDigest: polA, Nonce: nonce}.ReportData()
	if err != nil {
		t.Fatal(err)
	}
	full := sevtest.CreateRawReport(&sevtest.TestReportOptions{ReportData: rd[:]})
	raw := full[:abi.ReportSize]
	binary.LittleEndian.PutUint64(raw[0x08:0x10], abi.SnpPolicyToBytes(abi.SnpPolicy{Debug: debug}))
	copy(raw[0x90:0xC0], measurement)
	r, s, err := signer.Sign(abi.SignedComponent(raw[:]))
	if err != nil {
		t.Fatal(err)
	}
	if err := abi.SetSignature(r, s, raw[:]); err != nil {
		t.Fatal(err)
	}
	q := &Quote{Platform: PlatformSEVSNP, Report: raw[:]}
	q.Certificates = append(q.Certificates, signer.Vcek, signer.Ask, signer.Ark)
	ev := quoteEvidence(q, modelA, polA)
	return ev, VerifyOptions{
		Requirements: Requirements{Measurements: []string{hex.EncodeToString(measurement)}},
		Roots:        []*x509.Certificate{signer.Ark}, Nonce: nonce, PolicyDigest: polA, Now: now,
		VerifyModel: func(ctx context.Context, ref, d string) error {
			if d != modelA {
				return errors.New("no signature satisfies the policy")
			}
			return nil
		},
	}
}

func quoteEvidence(q *Quote, model, policy string) *Evidence {
	p := constProvider{q}
	ev, err := Collect(context.Background(), p, CollectOptions{Reference: "reg.example/m:v1", Binding: Binding{ManifestDigest: model, PolicyDigest: policy, Nonce: nonce}})
	if err != nil {
		panic(err)
	}
	return ev
}

type constProvider struct{ q *Quote }

func (c constProvider) Name() string { return "test" }
func (c constProvider) Quote(context.Context, [64]byte) (*Quote, error) {
	return c.q, nil
}

func TestVerifyFakeAMDChain(t *testing.T) {
	m := make([]byte, 48)
	m[0] = 7
	ev, opts := fakeChainEvidence(t, false, m)
	res, err := Verify(context.Background(), ev, opts)
	if err != nil || !res.Passed || len(res.Steps) != 11 {
		t.Fatalf("genuine evidence: %v %+v", err, res)
	}
	if res.Steps[2].Detail != "revocation not checked offline (no CRL given)" {
		t.Fatalf("revocation step: %+v", res.Steps[2])
	}
	// CreateRawReport's default is the DEBUG bit set: refused unless allowed.
	ev, opts = fakeChainEvidence(t, true, m)
	if _, err := Verify(context.Background(), ev, opts); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), StepPolicyBits) {
		t.Fatalf("debug: %v", err)
	}
	opts.Requirements.DebugAllowed = true
	if _, err := Verify(context.Background(), ev, opts); err != nil {
		t.Fatalf("debug allowed: %v", err)
	}
	// AMD's embedded roots do not accept the test-only chain.
	opts.Roots = nil
	if _, err := Verify(context.Background(), ev, opts); err == nil || !strings.Contains(err.Error(), "AMD's embedded roots") {
		t.Fatalf("embedded roots: %v", err)
	}
}

// TestVerifyRefusals: each tampering is refused at its own step.
func TestVerifyRefusals(t *testing.T) {
	dir := t.TempDir()
	sim := &Simulated{Dir: dir}
	genuine := func(model string, mut func(*Simulated)) (*Evidence, VerifyOptions) {
		s := *sim
		if mut != nil {
			mut(&s)
		}
		ev, err := Collect(context.Background(), &s, CollectOptions{Reference: "reg.example/m:v1", Binding: Binding{ManifestDigest: model, PolicyDigest: polA, Nonce: nonce}})
		if err != nil {
			t.Fatal(err)
		}
		roots, err := LoadRoots(sim.RootsFile())
		if err != nil {
			t.Fatal(err)
		}
		return ev, VerifyOptions{
			Requirements: Requirements{Measurements: []string{hex.EncodeToString(SimulatedMeasurement)}, MinimumTCB: TCB{SNP: 8}},
			Roots:        roots, Nonce: nonce, PolicyDigest: polA,
			VerifyModel: func(ctx context.Context, ref, d string) error {
				if d != modelA {
					return errors.New("no signature satisfies the policy")
				}
				return nil
			},
		}
	}
	if ev, o := genuine(modelA, nil); true {
		res, err := Verify(context.Background(), ev, o)
		if err != nil || !res.Passed || !res.Insecure || ev.Warning != InsecureWarning {
			t.Fatalf("genuine simulated evidence: %v %+v", err, res)
		}
	}
	other := t.TempDir()
	otherRoots, _ := LoadRoots(func() string {
		(&Simulated{Dir: other}).Quote(context.Background(), [64]byte{})
		return filepath.Join(other, "roots.pem")
	}())
	for _, tc := range []struct {
		name, step string
		model      string
		sim        func(*Simulated)
		tamper     func(*Evidence, *VerifyOptions)
	}{
		{"another model digest in the evidence", StepReportData, modelA, nil, func(e *Evidence, o *VerifyOptions) { e.Model.Digest = modelB }},
		{"genuine evidence for an unverified model", StepModel, modelB, nil, nil},
		{"another policy digest", StepPolicyDigest, modelA, nil, func(e *Evidence, o *VerifyOptions) { o.PolicyDigest = polB }},
		{"policy digest changed in both", StepReportData, modelA, nil, func(e *Evidence, o *VerifyOptions) { o.PolicyDigest, e.PolicyDigest = polB, polB }},
		{"wrong nonce", StepNonce, modelA, nil, func(e *Evidence, o *VerifyOptions) { o.Nonce = []byte("another nonce!!!") }},
		{"nonce rewritten in the evidence", StepReportData, modelA, nil, func(e *Evidence, o *VerifyOptions) {
			o.Nonce = []byte("another nonce!!!")
			e.Nonce = hex.EncodeToString(o.Nonce)
		}},
		{"untrusted root", StepChain, modelA, nil, func(e *Evidence, o *VerifyOptions) { o.Roots = otherRoots }},
		{"debug bit forbidden", StepPolicyBits, modelA, func(s *Simulated) { s.Debug = true }, nil},
		{"migration agent forbidden", StepPolicyBits, modelA, func(s *Simulated) { s.MigrateMA = true }, nil},
		{"measurement not allowed", StepMeasurement, modelA, func(s *Simulated) { s.Measurement = make([]byte, 48) }, nil},
		{"empty allowlist", StepMeasurement, modelA, nil, func(e *Evidence, o *VerifyOptions) { o.Requirements.Measurements = nil }},
		{"TCB below the floor", StepTCB, modelA, nil, func(e *Evidence, o *VerifyOptions) { o.Requirements.MinimumTCB.SNP = 99 }},
		{"one flipped byte in REPORT_DATA", StepSignature, modelA, nil, func(e *Evidence, o *VerifyOptions) { e.Report[0x50] ^= 1 }},
		{"one flipped byte in the measurement", StepSignature, modelA, nil, func(e *Evidence, o *VerifyOptions) { e.Report[0x90] ^= 1 }},
		{"one flipped byte in the signature", StepSignature, modelA, nil, func(e *Evidence, o *VerifyOptions) { e.Report[0x2A0] ^= 1 }},
		{"key added after the fact", StepReportData, modelA, nil, func(e *Evidence, o *VerifyOptions) { e.PublicKey = []byte("a key") }},
		{"no chain", StepChain, modelA, nil, func(e *Evidence, o *VerifyOptions) { e.Certificates = "" }},
		{"an SEV-SNP report labelled TDX", StepFormat, modelA, nil, func(e *Evidence, o *VerifyOptions) { e.Platform = PlatformTDX }},
		{"truncated report", StepFormat, modelA, nil, func(e *Evidence, o *VerifyOptions) { e.Report = e.Report[:100] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, o := genuine(tc.model, tc.sim)
			if tc.tamper != nil {
				tc.tamper(ev, &o)
			}
			res, err := Verify(context.Background(), ev, o)
			if !errors.Is(err, ErrRefused) || !errors.Is(err, referrers.ErrVerification) {
				t.Fatalf("want a refusal, got %v", err)
			}
			last := res.Steps[len(res.Steps)-1]
			if last.OK || last.Name != tc.step || res.Passed {
				t.Fatalf("refused at %q (%s), want %q", last.Name, last.Detail, tc.step)
			}
		})
	}
}

// TestConfigfsTSM drives the configfs-tsm provider through
// go-configfs-tsm's fake configfs, answering as an SEV-SNP guest would:
// the outblob a report over the inblob, the auxblob the certificate table.
func TestConfigfsTSM(t *testing.T) {
	now := time.Now()
	signer, err := sevtest.DefaultTestOnlyCertChain("Milan", now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	sub := faketsm.Report611(0)
	sub.ReadAttr = func(e *faketsm.ReportEntry, attr string) ([]byte, error) {
		switch attr {
		case "provider":
			return []byte("sev_guest\n"), nil
		case "auxblob":
			return abi.CertsFromProto(&spb.CertificateChain{VcekCert: signer.Vcek.Raw, AskCert: signer.Ask.Raw, ArkCert: signer.Ark.Raw}).Marshal(), nil
		case "outblob":
			in := e.InAttrs["inblob"].Value
			if len(in) != 64 {
				return nil, syscall.EINVAL
			}
			full := sevtest.CreateRawReport(&sevtest.TestReportOptions{ReportData: in})
			raw := full[:abi.ReportSize]
			binary.LittleEndian.PutUint64(raw[0x08:0x10], abi.SnpPolicyToBytes(abi.SnpPolicy{}))
			r, s, err := signer.Sign(abi.SignedComponent(raw[:]))
			if err != nil {
				return nil, err
			}
			if err := abi.SetSignature(r, s, raw); err != nil {
				return nil, err
			}
			return raw[:], nil
		}
		return nil, os.ErrNotExist
	}
	p := &ConfigfsTSM{Client: &faketsm.Client{Subsystems: map[string]configfsi.Client{"report": sub}}}
	ev, err := Collect(context.Background(), p, CollectOptions{Reference: "r", Binding: Binding{ManifestDigest: modelA, PolicyDigest: polA, Nonce: nonce}})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Platform != PlatformSEVSNP || ev.Insecure || strings.Count(ev.Certificates, "BEGIN CERTIFICATE") != 3 {
		t.Fatalf("evidence: %+v", ev)
	}
	zero := hex.EncodeToString(make([]byte, 48))
	res, err := Verify(context.Background(), ev, VerifyOptions{
		Requirements: Requirements{Measurements: []string{zero}}, Roots: []*x509.Certificate{signer.Ark},
		Nonce: nonce, PolicyDigest: polA, Now: now,
		VerifyModel: func(context.Context, string, string) error { return nil },
	})
	if err != nil || !res.Passed {
		t.Fatalf("configfs-tsm evidence: %v %+v", err, res)
	}
}

func TestRequirementsStrict(t *testing.T) {
	ok := "version: 1\nruntime:\n  measurements: [" + strings.Repeat("ab", 48) + "]\n  minimum_tcb: {snp: 8}\n  debug_allowed: false\n"
	r, err := ParseRequirements([]byte(ok))
	if err != nil || len(r.Measurements) != 1 || r.MinimumTCB.SNP != 8 {
		t.Fatalf("%v %+v", err, r)
	}
	// The policy decoder, strict as it is, accepts the section.
	if _, err := referrers.DecodePolicy([]byte(ok + "models:\n  - match: {repository: '*'}\n    mode: enforce\n")); err != nil && strings.Contains(err.Error(), "runtime") {
		t.Fatalf("referrers refuses the runtime section: %v", err)
	}
	for _, bad := range []string{
		"runtime:\n  Measurements: []\n",
		"runtime:\n  debug: true\n",
		"runtime:\n  measurements: [abcd]\n",
		"runtime:\n  measurements: [zz]\n",
	} {
		if _, err := ParseRequirements([]byte(bad)); !errors.Is(err, ErrRequirements) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if r, err := ParseRequirements([]byte("version: 1\n")); err != nil || len(r.Measurements) != 0 {
		t.Fatalf("no section: %v", err)
	}
}

// TestVerifyCRL: a CRL signed by the chain's ARK that revokes the ASK
// refuses the evidence at the revocation step; one that revokes nothing
// passes; one signed by another key is refused.
func TestVerifyCRL(t *testing.T) {
	m := make([]byte, 48)
	ev, opts := fakeChainEvidence(t, false, m)
	signer, err := sevtest.DefaultTestOnlyCertChain("Milan", opts.Now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	crl := func(t *testing.T, revoke *x509.Certificate, key *rsa.PrivateKey) *x509.RevocationList {
		tmpl := &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: opts.Now.Add(-time.Minute), NextUpdate: opts.Now.Add(time.Hour)}
		if revoke != nil {
			tmpl.RevokedCertificateEntries = []x509.RevocationListEntry{{SerialNumber: revoke.SerialNumber, RevocationTime: opts.Now.Add(-time.Minute)}}
		}
		der, err := x509.CreateRevocationList(rand.Reader, tmpl, signer.Ark, key)
		if err != nil {
			t.Fatal(err)
		}
		l, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	opts.CRL = crl(t, nil, signer.Keys.Ark)
	res, err := Verify(context.Background(), ev, opts)
	if err != nil || res.Steps[2].Detail != "checked against the given CRL" {
		t.Fatalf("empty CRL: %v %+v", err, res)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	for name, l := range map[string]*x509.RevocationList{
		"ASK revoked":           crl(t, signer.Ask, signer.Keys.Ark),
		"CRL signed by another": crl(t, nil, other),
	} {
		opts.CRL = l
		res, err := Verify(context.Background(), ev, opts)
		if !errors.Is(err, ErrRefused) || res.Steps[len(res.Steps)-1].Name != StepRevocation {
			t.Errorf("%s: %v", name, err)
		}
	}
}
