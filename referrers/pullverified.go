package referrers

import (
	"context"
	"errors"
	"fmt"
	"maps"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/modelattest/modelattest/oras"
)

// ErrNoPolicy is returned by PullVerified when it is given no policy: a
// pull without verification is oras.Pull, called by name.
var ErrNoPolicy = errors.New("no policy given: a verified pull needs one (oras.Pull pulls without verifying signatures)")

// PullVerifiedOptions are the optional settings of PullVerified. The zero
// value verifies with the default limits and pulls every file, eight at
// once, with no progress.
type PullVerifiedOptions struct {
	// Verify tunes the verification (limits, the time maxAge is measured
	// against).
	Verify VerifyOptions
	// Pull tunes the pull (files to include, concurrency, progress, extra
	// files such as model.sig).
	Pull oras.PullOptions
	// OnVerified, when set, is called with the report once the referrer
	// graph has been judged and before any file is fetched, whether the
	// model passed or not: a program prints the verdict there, or records
	// a decision, before a long download starts. An error it returns stops
	// the pull and is returned.
	OnVerified func(*Report) error
	// ModelSignature writes, as model.sig beside the files, the
	// model-signing bundle that met the rule's model-signing requirement
	// (Report.ModelSigningBundle), for `model_signing verify`. A rule with
	// no such requirement, or one not met, stops the pull before any file
	// is fetched. It cannot be combined with Pull.Include: the bundle signs
	// every file.
	ModelSignature bool
	// DecryptionKey, when set, is the private key (PEM) of a recipient the
	// model's encrypted layers were wrapped to. Their keys are unwrapped
	// (oras.DecryptionKeys) only once the model passed the policy, so a
	// substituted model is refused as unverified, whatever it is
	// encrypted to. The keys go to Pull.Decrypt.
	DecryptionKey []byte
}

// PullVerified verifies the model desc (a digest the caller resolved once,
// see oras.Resolve) in src against the policy rule that matches src, and
// only then pulls that same digest into dir with oras.Pull.
//
// What happens follows the rule's mode:
//   - the model passes: it is pulled; the error is nil.
//   - it fails an enforce rule (or no rule matches, which denies): nothing is
//     fetched and dir is untouched; the report comes back with a
//     *PolicyError (errors.Is(err, ErrPolicyNotSatisfied)).
//   - it fails a warn or audit rule: it is pulled, and the report, with
//     Passed false, tells the caller to say so; the error is nil.
//
// Whatever the verdict, every blob is still hashed as it streams and
// checked against its descriptor, and a failed pull leaves dir as it was.
// A verification that could not run (a registry error) returns a nil
// report and pulls nothing.
func PullVerified(ctx context.Context, src *oras.Target, desc ocispec.Descriptor, dir string, p *Policy, opts PullVerifiedOptions) (*Report, *oras.PullResult, error) {
	if p == nil {
		return nil, nil, ErrNoPolicy
	}
	if src == nil {
		return nil, nil, errors.New("pull: no source target")
	}
	if opts.ModelSignature && len(opts.Pull.Include) > 0 {
		return nil, nil, errors.New("pull: a model signature cannot be written with a partial pull (Include): it signs every file")
	}
	rep, err := VerifyModel(ctx, src, src.PolicyName(), desc, p, opts.Verify)
	if rep == nil {
		return nil, nil, err
	}
	if opts.OnVerified != nil {
		if herr := opts.OnVerified(rep); herr != nil {
			return rep, nil, herr
		}
	}
	if err != nil {
		// An enforced rule refused the model: not one byte of it is fetched.
		return rep, nil, err
	}
	po := opts.Pull
	if len(opts.DecryptionKey) > 0 {
		keys, err := oras.DecryptionKeys(ctx, src, desc, opts.DecryptionKey)
		if err != nil {
			return rep, nil, fmt.Errorf("decryption key: %w", err)
		}
		po.Decrypt = keys
	}
	if opts.ModelSignature {
		sig, err := rep.ModelSigningBundle()
		if err != nil {
			return rep, nil, fmt.Errorf("model signature: %w", err)
		}
		po.ExtraFiles = maps.Clone(po.ExtraFiles)
		if po.ExtraFiles == nil {
			po.ExtraFiles = map[string][]byte{}
		}
		po.ExtraFiles["model.sig"] = sig
	}
	res, err := oras.Pull(ctx, src, desc, dir, po)
	if err != nil {
		return rep, nil, err
	}
	return rep, res, nil
}
