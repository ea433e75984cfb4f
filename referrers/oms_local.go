package referrers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
)

// OMSPathOptions are the optional settings of VerifyOMSPath. The zero
// value reads the bundle from model.sig inside a directory and leaves out
// only what the statement says (or model_signing's defaults).
type OMSPathOptions struct {
	// Signature is the model-signing bundle file, as `model_signing verify
	// --signature`. Empty: model.sig inside the directory; a single file
	// has no default.
	Signature string
	// IgnorePaths are more paths to leave out of a directory, as
	// `model_signing verify --ignore-paths`: relative to the directory, or
	// absolute paths inside it (others are skipped, as model_signing does).
	// A directory ignores the whole tree below it. They exempt files on
	// disk only; a single file ignores nothing.
	IgnorePaths []string
}

// OMSPathReport is the result of verifying a model on disk against an
// OpenSSF model-signing bundle. It is data: the CLI prints it as text or
// JSON.
type OMSPathReport struct {
	// Path is the model as given; Kind is "directory" or "file".
	Path string `json:"path"`
	Kind string `json:"kind,omitempty"`
	// Signature is the bundle file read.
	Signature string `json:"signature,omitempty"`
	Passed    bool   `json:"passed"`
	// VerifiedBy names the signer the bundle verified against.
	VerifiedBy []string `json:"verifiedBy,omitempty"`
	// Name and Digest are the statement's subject: the model's name and
	// the digest over its files.
	Name   string        `json:"name,omitempty"`
	Digest digest.Digest `json:"digest,omitempty"`
	// Files is how many files were hashed and found signed.
	Files int `json:"files"`
	// IgnorePaths are the paths left out of a directory: the statement's
	// (or the defaults), the caller's, and the signature file.
	IgnorePaths []string `json:"ignorePaths,omitempty"`
	// Reason says why verification failed.
	Reason string `json:"reason,omitempty"`

	// Policy, Rule and Mode are set when a policy chose the signers
	// (VerifyOMSPathPolicy); Rule is -1 when no rule matched.
	Policy digest.Digest `json:"policy,omitempty"`
	Rule   *int          `json:"rule,omitempty"`
	Mode   Mode          `json:"mode,omitempty"`
	// NotChecked lists what the matched rule requires that a model on disk
	// cannot show (signatures and attestations over a manifest digest).
	NotChecked []string `json:"notChecked,omitempty"`
}

// VerifyOMSPath verifies a model on disk — a directory, or a single file —
// against an OpenSSF model-signing bundle, as `model_signing verify` does:
// the bundle must verify against one of signers, and its statement must
// list exactly the files found, with their sha256 digests. A single file's
// statement has one resource named ".". A directory leaves out the paths
// the statement's ignore_paths name (model_signing's defaults, .git* and
// model.sig, when it names none), opts.IgnorePaths, and the signature file
// itself. Symbolic links and special files inside a directory are refused.
//
// A model that fails returns the report (Passed false, Reason) and an
// error wrapping ErrVerification. An error with a nil report means the
// check could not run (no such path, no readable signature file).
func VerifyOMSPath(ctx context.Context, modelPath string, signers []*Verifier, opts OMSPathOptions) (*OMSPathReport, error) {
	if len(signers) == 0 {
		return nil, errors.New("model signing: no signer to verify against")
	}
	m, err := openOMSPath(modelPath, opts)
	if err != nil {
		return nil, err
	}
	return m.verify(ctx, signers)
}

// omsPath is a model on disk and the bundle that claims to sign it.
type omsPath struct {
	rep    *OMSPathReport
	root   string // symlinks resolved
	dir    bool
	bundle []byte
	ignore []string   // the caller's ignore paths, relative to root
	st     *Statement // once verified
}

func openOMSPath(modelPath string, opts OMSPathOptions) (*omsPath, error) {
	abs, err := filepath.Abs(modelPath)
	if err != nil {
		return nil, fmt.Errorf("model signing: %w", err)
	}
	root, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("model signing: %w", err)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("model signing: %w", err)
	}
	m := &omsPath{rep: &OMSPathReport{Path: modelPath}, root: root, dir: fi.IsDir()}
	switch {
	case fi.IsDir():
		m.rep.Kind = "directory"
	case fi.Mode().IsRegular():
		m.rep.Kind = "file"
	default:
		return nil, fmt.Errorf("model signing: %s is neither a regular file nor a directory", modelPath)
	}
	sig := opts.Signature
	if sig == "" {
		if !m.dir {
			return nil, fmt.Errorf("model signing: %s is a single file: name its signature file", modelPath)
		}
		sig = filepath.Join(modelPath, "model.sig")
	}
	m.rep.Signature = sig
	if m.bundle, err = readBundleFile(sig); err != nil {
		return nil, err
	}
	if m.dir {
		for _, p := range opts.IgnorePaths {
			if rel, ok := relInside(abs, root, p); ok {
				m.ignore = append(m.ignore, rel)
			}
		}
		if sigAbs, err := filepath.Abs(sig); err == nil {
			if rel, ok := relInside(abs, root, sigAbs); ok {
				m.ignore = append(m.ignore, rel)
			}
		}
	}
	return m, nil
}

// readBundleFile reads a signature file, bounded as a referrer's bundle is.
func readBundleFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("model signing: signature: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxBundleBytes+1))
	if err != nil {
		return nil, fmt.Errorf("model signing: signature %s: %w", name, err)
	}
	if len(b) > MaxBundleBytes {
		return nil, fmt.Errorf("%w: signature %s is over the %d-byte limit", ErrVerification, name, MaxBundleBytes)
	}
	return b, nil
}

// relInside makes an ignore path relative to the model directory: a
// relative path is already; an absolute one counts only when it lies
// inside the directory (as given, or with symlinks resolved).
func relInside(abs, root, p string) (string, bool) {
	if !filepath.IsAbs(p) {
		rel := path.Clean(filepath.ToSlash(p))
		if rel == "." || rel == ".." || strings.HasPrefix(rel, "../") || strings.HasPrefix(rel, "/") {
			return "", false
		}
		return rel, true
	}
	for _, base := range []string{abs, root} {
		rel, err := filepath.Rel(base, filepath.Clean(p))
		if err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return filepath.ToSlash(rel), true
		}
	}
	return "", false
}

// verify checks the bundle against each signer in turn, then the files.
func (m *omsPath) verify(ctx context.Context, signers []*Verifier) (*OMSPathReport, error) {
	var st *Statement
	var reasons []string
	for _, v := range signers {
		s, err := v.VerifyStatementOnly(m.bundle)
		if err != nil {
			reasons = append(reasons, strings.TrimPrefix(err.Error(), ErrVerification.Error()+": "))
			continue
		}
		st, m.st = s, s
		m.rep.VerifiedBy = []string{v.Name}
		break
	}
	if st == nil {
		return m.fail(fmt.Errorf("%w: the signature does not verify against a trusted signer: %s", ErrVerification, strings.Join(reasons, "; ")))
	}
	if len(st.Subject) == 1 {
		m.rep.Name = st.Subject[0].Name
		if h := st.Subject[0].Digest["sha256"]; h != "" {
			m.rep.Digest = digest.NewDigestFromEncoded(digest.SHA256, h)
		}
	}
	files := map[string]string{}
	if m.dir {
		var ignore []string
		for _, p := range append(OMSIgnorePaths(st), m.ignore...) {
			if !slices.Contains(ignore, p) {
				ignore = append(ignore, p)
			}
		}
		m.rep.IgnorePaths = ignore
		h, err := hashDir(ctx, m.root, ignore)
		if err != nil {
			if errors.Is(err, ErrVerification) {
				return m.fail(err)
			}
			return nil, err
		}
		files = h
	} else {
		h, err := hashFile(m.root)
		if err != nil {
			return nil, err
		}
		files["."] = h
	}
	if err := CheckOMS(st, files); err != nil {
		return m.fail(fmt.Errorf("%w: %w", ErrVerification, err))
	}
	m.rep.Files = len(files)
	m.rep.Passed = true
	return m.rep, nil
}

func (m *omsPath) fail(err error) (*OMSPathReport, error) {
	m.rep.Passed = false
	m.rep.Reason = strings.TrimPrefix(err.Error(), ErrVerification.Error()+": ")
	return m.rep, err
}

func hashFile(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", fmt.Errorf("model signing: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("model signing: %s: %w", name, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// OMSIgnorePaths is what a model-signing statement leaves out of a
// directory on disk: its ignore_paths, or model_signing's defaults (.git*,
// model.sig) when it names none.
func OMSIgnorePaths(st *Statement) []string {
	var pred OMSPredicate
	if json.Unmarshal(st.Predicate, &pred) != nil || len(pred.Serialization.IgnorePaths) == 0 {
		return append([]string(nil), omsIgnore...)
	}
	return append([]string(nil), pred.Serialization.IgnorePaths...)
}

// VerifyOMSPathPolicy is VerifyOMSPath with the signers a policy names:
// the rule matching the model's absolute path (symlinks resolved, as an
// OCI layout is matched) must require a model-signing attestation, and the
// bundle must verify against one of that requirement's signers. One
// signature file is one signer, so a threshold above 1 cannot be met. What
// the rule also requires but a folder on disk cannot show (signatures and
// other attestations, which name a manifest digest) is listed in
// NotChecked. A rule in warn or audit mode reports a failure with no
// error; an enforced failure, no matching rule, a reject rule or a rule
// with no model-signing requirement return the report and an error
// wrapping ErrPolicyNotSatisfied.
func VerifyOMSPathPolicy(ctx context.Context, modelPath string, p *Policy, opts OMSPathOptions) (*OMSPathReport, error) {
	if p == nil || !p.compiled {
		return nil, fmt.Errorf("%w: the policy was never compiled: make it with LoadPolicy, ParsePolicy or CompilePolicy", ErrPolicy)
	}
	m, err := openOMSPath(modelPath, opts)
	if err != nil {
		return nil, err
	}
	m.rep.Policy, m.rep.Mode = p.Digest, ModeEnforce
	rule, idx := p.Match(m.root)
	m.rep.Rule = &idx
	deny := func(reason string) (*OMSPathReport, error) {
		m.rep.Reason = reason
		if m.rep.Mode != ModeEnforce {
			return m.rep, nil
		}
		return m.rep, fmt.Errorf("%w: %s: %s", ErrPolicyNotSatisfied, modelPath, reason)
	}
	if rule == nil {
		return deny(fmt.Sprintf("no rule matches %q: denied", m.root))
	}
	m.rep.Mode = rule.Mode
	if rule.Reject {
		return deny(fmt.Sprintf("rule %d rejects every matching model", idx))
	}
	var req *AttestationRule
	if rule.Signatures != nil {
		m.rep.NotChecked = append(m.rep.NotChecked, "signatures")
	}
	for i := range rule.Attestations {
		a := &rule.Attestations[i]
		if a.PredicateType == PredicateModelSigning && req == nil {
			req = a
			continue
		}
		m.rep.NotChecked = append(m.rep.NotChecked, "attestation "+a.PredicateType)
	}
	if req == nil {
		return deny(fmt.Sprintf("rule %d requires no model-signing attestation: there is nothing to check on disk", idx))
	}
	if req.Threshold > 1 {
		return deny(fmt.Sprintf("rule %d requires model signing by %d distinct signers; one signature file is one signer", idx, req.Threshold))
	}
	var signers []*Verifier
	for _, name := range req.Signers {
		if v := p.Verifier(name); v != nil {
			signers = append(signers, v)
		}
	}
	rep, err := m.verify(ctx, signers)
	if rep == nil || err == nil {
		return rep, err
	}
	if !errors.Is(err, ErrVerification) {
		return nil, err
	}
	return deny(rep.Reason)
}
