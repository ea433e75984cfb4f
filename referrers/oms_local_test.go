package referrers_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/referrers"
)

// omsToolSign signs files (name → content) as the Python model_signing
// tool's "files" serialization does: resources in byte order of name with
// their sha256, the subject digest over the concatenated digests, and
// ignore_paths as given (absent when nil). It is how the single-file and
// no-ignore_paths fixtures are made here (see testdata/NOTICE): the tool
// itself cannot run in this build.
func omsToolSign(t *testing.T, s *referrers.Signer, name string, files map[string][]byte, ignore []string) []byte {
	t.Helper()
	type resource struct {
		Algorithm string `json:"algorithm"`
		Name      string `json:"name"`
		Digest    string `json:"digest"`
	}
	ser := map[string]any{"method": "files", "hash_type": "sha256", "allow_symlinks": false}
	if ignore != nil {
		ser["ignore_paths"] = ignore
	}
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	root := sha256.New()
	var res []resource
	for _, n := range names {
		h := sha256.Sum256(files[n])
		root.Write(h[:])
		res = append(res, resource{"sha256", n, hex.EncodeToString(h[:])})
	}
	pred, err := json.Marshal(map[string]any{"resources": res, "serialization": ser})
	if err != nil {
		t.Fatal(err)
	}
	st, err := referrers.NewStatement(digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(root.Sum(nil))), name, referrers.PredicateModelSigning, pred)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.SignStatement(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// omsKey is the model_signing test key pair (testdata/oms/keys, see NOTICE).
func omsKey(t *testing.T) (*referrers.Signer, *referrers.Verifier) {
	t.Helper()
	s, err := referrers.LoadSigner(context.Background(), "testdata/oms/keys/signing-key.pem", nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := referrers.LoadKeyVerifier(context.Background(), "oms key", "testdata/oms/keys/signing-key-pub.pem")
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

func writeFiles(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for p, b := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestVerifyOMSPath: a directory or a single file verifies against a
// model-signing bundle as `model_signing verify` does, with verify-time
// ignore paths and the default ignores; every change is refused.
func TestVerifyOMSPath(t *testing.T) {
	ctx := context.Background()
	s, v := omsKey(t)
	weights := map[string][]byte{"model.safetensors": []byte("weights"), "config.json": []byte(`{"a":1}`)}
	git := map[string][]byte{".git/config": []byte("[core]\n\tfsmonitor = evil\n"), ".gitattributes": []byte("* filter=x\n")}

	// A single file, as model_signing signs one: one resource named ".".
	fileDir := t.TempDir()
	single := filepath.Join(fileDir, "model.gguf")
	writeFiles(t, fileDir, map[string][]byte{"model.gguf": []byte("gguf bytes")})
	singleSig := filepath.Join(fileDir, "model.gguf.sig")
	os.WriteFile(singleSig, omsToolSign(t, s, "model.gguf", map[string][]byte{".": []byte("gguf bytes")}, []string{".git", ".gitattributes", ".github", ".gitignore"}), 0o644)

	type tc struct {
		name  string
		setup func(t *testing.T) (path string, opts referrers.OMSPathOptions)
		want  string // "" passes; else a refusal containing this
	}
	dir := func(t *testing.T, files map[string][]byte, sig []byte) string {
		d := filepath.Join(t.TempDir(), "tiny")
		writeFiles(t, d, files)
		if sig != nil {
			os.WriteFile(filepath.Join(d, "model.sig"), sig, 0o644)
		}
		return d
	}
	with := func(base map[string][]byte, more map[string][]byte) map[string][]byte {
		out := map[string][]byte{}
		for k, b := range base {
			out[k] = b
		}
		for k, b := range more {
			out[k] = b
		}
		return out
	}
	cases := []tc{
		{"single file", func(t *testing.T) (string, referrers.OMSPathOptions) {
			return single, referrers.OMSPathOptions{Signature: singleSig}
		}, ""},
		{"single file changed", func(t *testing.T) (string, referrers.OMSPathOptions) {
			d := t.TempDir()
			p := filepath.Join(d, "model.gguf")
			os.WriteFile(p, []byte("gguf bytez"), 0o644)
			return p, referrers.OMSPathOptions{Signature: singleSig}
		}, `file ".": digest`},
		{"single-file signature on a directory", func(t *testing.T) (string, referrers.OMSPathOptions) {
			return dir(t, map[string][]byte{"model.gguf": []byte("gguf bytes")}, nil), referrers.OMSPathOptions{Signature: singleSig}
		}, `file "." is signed but missing`},
		{"directory signed by the tool's defaults", func(t *testing.T) (string, referrers.OMSPathOptions) {
			return dir(t, weights, omsToolSign(t, s, "tiny", weights, []string{".git", "model.sig"})), referrers.OMSPathOptions{}
		}, ""},
		{"extra file", func(t *testing.T) (string, referrers.OMSPathOptions) {
			return dir(t, with(weights, map[string][]byte{"notes.txt": []byte("x")}), omsToolSign(t, s, "tiny", weights, []string{"model.sig"})), referrers.OMSPathOptions{}
		}, `file "notes.txt" is not covered by the signature`},
		{"extra file under a verify-time ignore path", func(t *testing.T) (string, referrers.OMSPathOptions) {
			return dir(t, with(weights, map[string][]byte{"cache/a/b.bin": []byte("x")}), omsToolSign(t, s, "tiny", weights, []string{"model.sig"})),
				referrers.OMSPathOptions{IgnorePaths: []string{"cache"}}
		}, ""},
		{"extra file under an absolute verify-time ignore path", func(t *testing.T) (string, referrers.OMSPathOptions) {
			d := dir(t, with(weights, map[string][]byte{"notes.txt": []byte("x")}), omsToolSign(t, s, "tiny", weights, []string{"model.sig"}))
			return d, referrers.OMSPathOptions{IgnorePaths: []string{filepath.Join(d, "notes.txt")}}
		}, ""},
		{"ignore path outside the directory ignores nothing", func(t *testing.T) (string, referrers.OMSPathOptions) {
			d := dir(t, with(weights, map[string][]byte{"notes.txt": []byte("x")}), omsToolSign(t, s, "tiny", weights, []string{"model.sig"}))
			return d, referrers.OMSPathOptions{IgnorePaths: []string{"../notes.txt", filepath.Join(t.TempDir(), "notes.txt")}}
		}, `file "notes.txt" is not covered`},
		{"statement without ignore_paths: .git* and model.sig ignored by default", func(t *testing.T) (string, referrers.OMSPathOptions) {
			return dir(t, with(weights, git), omsToolSign(t, s, "tiny", weights, nil)), referrers.OMSPathOptions{}
		}, ""},
		{"statement with ignore_paths: only those are ignored", func(t *testing.T) (string, referrers.OMSPathOptions) {
			return dir(t, with(weights, git), omsToolSign(t, s, "tiny", weights, []string{"model.sig", ".gitattributes"})), referrers.OMSPathOptions{}
		}, `file ".git/config" is not covered`},
		{"signature file elsewhere in the directory is left out", func(t *testing.T) (string, referrers.OMSPathOptions) {
			d := dir(t, weights, nil)
			sig := filepath.Join(d, "sigs", "tiny.sig")
			writeFiles(t, d, map[string][]byte{"sigs/tiny.sig": omsToolSign(t, s, "tiny", weights, []string{".git"})})
			return d, referrers.OMSPathOptions{Signature: sig}
		}, ""},
		{"file changed in a directory", func(t *testing.T) (string, referrers.OMSPathOptions) {
			return dir(t, with(weights, map[string][]byte{"config.json": []byte(`{"a":2}`)}), omsToolSign(t, s, "tiny", weights, nil)), referrers.OMSPathOptions{}
		}, `file "config.json": digest`},
		{"symlink inside the directory", func(t *testing.T) (string, referrers.OMSPathOptions) {
			d := dir(t, weights, omsToolSign(t, s, "tiny", weights, nil))
			os.Symlink("/etc/passwd", filepath.Join(d, "link"))
			return d, referrers.OMSPathOptions{}
		}, "link is not a regular file"},
		{"the tool's elliptic-key fixture", func(t *testing.T) (string, referrers.OMSPathOptions) {
			return "testdata/oms/v1.1.0-elliptic-key", referrers.OMSPathOptions{}
		}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, opts := c.setup(t)
			rep, err := referrers.VerifyOMSPath(ctx, p, []*referrers.Verifier{v}, opts)
			if c.want == "" {
				if err != nil || rep == nil || !rep.Passed {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, referrers.ErrVerification) || rep == nil || rep.Passed {
				t.Fatalf("err = %v (want a verification failure)", err)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(rep.Reason, c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}

	// Could not run: no report, not a verification failure.
	for name, call := range map[string]func() error{
		"missing path": func() error {
			_, err := referrers.VerifyOMSPath(ctx, filepath.Join(t.TempDir(), "nope"), []*referrers.Verifier{v}, referrers.OMSPathOptions{})
			return err
		},
		"single file, no --signature": func() error {
			_, err := referrers.VerifyOMSPath(ctx, single, []*referrers.Verifier{v}, referrers.OMSPathOptions{})
			return err
		},
		"no model.sig": func() error {
			_, err := referrers.VerifyOMSPath(ctx, t.TempDir(), []*referrers.Verifier{v}, referrers.OMSPathOptions{})
			return err
		},
	} {
		if err := call(); err == nil || errors.Is(err, referrers.ErrVerification) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

// TestVerifyOMSPathKeyless: a keyless model-signing bundle verifies for
// its identity; the same bundle without its transparency-log entry never
// meets a keyless signer. A certificate bundle from a company PKI (no log
// entry, as `model_signing sign certificate` makes) meets an x509 signer.
func TestVerifyOMSPathKeyless(t *testing.T) {
	ctx := context.Background()
	ss := regtest.NewSigstore(t)
	s, err := referrers.NewKeylessSigner(ctx, referrers.KeylessOptions{FulcioURL: ss.FulcioURL, RekorURL: ss.RekorURL, IDToken: ss.Token(t, regtest.TestIdentity)})
	if err != nil {
		t.Fatal(err)
	}
	v, err := referrers.NewKeylessVerifier("ci", ss.TrustedRootJSON, referrers.KeylessIdentity{Issuer: regtest.TestIssuer, Subject: regtest.TestIdentity})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"w.bin": []byte("weights")}
	d := filepath.Join(t.TempDir(), "m")
	writeFiles(t, d, files)
	logged := omsToolSign(t, s, "m", files, nil)
	os.WriteFile(filepath.Join(d, "model.sig"), logged, 0o644)
	if _, err := referrers.VerifyOMSPath(ctx, d, []*referrers.Verifier{v}, referrers.OMSPathOptions{}); err != nil {
		t.Fatalf("logged keyless bundle: %v", err)
	}
	var b map[string]any
	json.Unmarshal(logged, &b)
	b["verificationMaterial"].(map[string]any)["tlogEntries"] = []any{}
	stripped, _ := json.Marshal(b)
	os.WriteFile(filepath.Join(d, "model.sig"), stripped, 0o644)
	if _, err := referrers.VerifyOMSPath(ctx, d, []*referrers.Verifier{v}, referrers.OMSPathOptions{}); !errors.Is(err, referrers.ErrVerification) {
		t.Fatalf("keyless bundle without a log entry: err = %v", err)
	}

	// model_signing's certificate fixture: no log entry, x509 anchor.
	ca, _ := os.ReadFile("testdata/oms/keys/ca-cert.pem")
	x, err := referrers.NewX509Verifier("corp", ca, referrers.X509Constraints{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := referrers.VerifyOMSPath(ctx, "testdata/oms/v1.1.0-certificate", []*referrers.Verifier{x}, referrers.OMSPathOptions{}); err != nil {
		t.Fatalf("certificate bundle with an x509 signer: %v", err)
	}
	if _, err := referrers.VerifyOMSPath(ctx, "testdata/oms/v1.1.0-certificate", []*referrers.Verifier{v}, referrers.OMSPathOptions{}); !errors.Is(err, referrers.ErrVerification) {
		t.Fatalf("certificate bundle (no log entry) met a keyless signer: %v", err)
	}
}

// TestVerifyOMSPathPolicy: the rule matching the path's absolute path
// names the signers; a rule that rejects, that requires no model signing or
// that asks more signers than one file can hold denies, unless it is warn.
func TestVerifyOMSPathPolicy(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	pub, _ := os.ReadFile("testdata/oms/keys/signing-key-pub.pem")
	os.WriteFile(filepath.Join(base, "oms.pub"), pub, 0o644)
	other, _ := os.ReadFile("testdata/cosign/cosign.pub")
	os.WriteFile(filepath.Join(base, "other.pub"), other, 0o644)
	models := filepath.Join(base, "models")
	for _, n := range []string{"good", "rejected", "plain", "twice", "warned", "full", "elsewhere"} {
		d := filepath.Join(models, n)
		os.MkdirAll(d, 0o755)
		for _, f := range []string{"signme-1", "signme-2", "model.sig"} {
			b, _ := os.ReadFile(filepath.Join("testdata/oms/v1.1.0-elliptic-key", f))
			os.WriteFile(filepath.Join(d, f), b, 0o644)
		}
	}
	policy := `version: 1
trust:
  oms: {key: oms.pub}
  other: {key: other.pub}
models:
  - match: ["` + models + `/good"]
    attestations: [{predicateType: model-signing, signers: [other, oms]}]
  - match: ["` + models + `/rejected"]
    reject: true
  - match: ["` + models + `/plain"]
    signatures: {signers: [oms]}
  - match: ["` + models + `/twice"]
    attestations: [{predicateType: model-signing, signers: [oms, other], threshold: 2}]
  - match: ["` + models + `/warned"]
    mode: warn
    attestations: [{predicateType: model-signing, signers: [other]}]
  - match: ["` + models + `/full"]
    signatures: {signers: [oms]}
    attestations:
      - {predicateType: model-signing, signers: [oms]}
      - {predicateType: slsaprovenance1, signers: [oms]}
`
	os.WriteFile(filepath.Join(base, "policy.yaml"), []byte(policy), 0o644)
	p, err := referrers.LoadPolicy(ctx, filepath.Join(base, "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"good":      "",
		"rejected":  "rejects every matching model",
		"plain":     "requires no model-signing attestation",
		"twice":     "one signature file is one signer",
		"elsewhere": "no rule matches",
	} {
		rep, err := referrers.VerifyOMSPathPolicy(ctx, filepath.Join(models, name), p, referrers.OMSPathOptions{})
		if want == "" {
			if err != nil || !rep.Passed || len(rep.VerifiedBy) != 1 || rep.VerifiedBy[0] != "oms" {
				t.Errorf("%s: err = %v, report %+v", name, err, rep)
			}
			continue
		}
		if !errors.Is(err, referrers.ErrPolicyNotSatisfied) || rep == nil || rep.Passed || !strings.Contains(rep.Reason, want) {
			t.Errorf("%s: err = %v, want %q", name, err, want)
		}
	}
	rep, err := referrers.VerifyOMSPathPolicy(ctx, filepath.Join(models, "warned"), p, referrers.OMSPathOptions{})
	if err != nil || rep.Passed || rep.Mode != referrers.ModeWarn {
		t.Errorf("warn rule: err = %v, report %+v", err, rep)
	}
	rep, err = referrers.VerifyOMSPathPolicy(ctx, filepath.Join(models, "full"), p, referrers.OMSPathOptions{})
	if err != nil || !rep.Passed || strings.Join(rep.NotChecked, ",") != "signatures,attestation https://slsa.dev/provenance/v1" {
		t.Errorf("full rule: err = %v, notChecked %q", err, rep.NotChecked)
	}
}
