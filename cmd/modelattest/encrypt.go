package main

import (
	"fmt"
	"path"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/modelattest/modelattest/encryption"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// pushSignFlags are push's encryption and model-signing flags.
type pushSignFlags struct {
	recipients   []string
	modelSigning bool
	modelName    string
	signer       signerFlags
}

func (f *pushSignFlags) add(fs *pflag.FlagSet) {
	fs.StringArrayVar(&f.recipients, "encrypt-recipient", nil, "encrypt every file layer (ocicrypt, +encrypted media types) for this recipient: jwe:PUBLIC-KEY.pem, RSA or EC (repeatable)")
	fs.BoolVar(&f.modelSigning, "model-signing", false, "also sign an OpenSSF model-signing statement of the files (with --encrypt-recipient: made from the plaintext) and attach it; needs --key or --keyless")
	fs.StringVar(&f.modelName, "model-name", "", "subject name of the model-signing statement (default: the repository's last path element)")
	f.signer.add(fs)
}

// check refuses signer flags without --model-signing and reads the
// recipients.
func (f *pushSignFlags) check(fs *pflag.FlagSet) ([]encryption.Recipient, error) {
	if !f.modelSigning {
		for _, n := range []string{"key", "keyless", "certificate-chain", "identity-token", "model-name"} {
			if fs.Changed(n) {
				return nil, usageError{fmt.Errorf("--%s signs the model-signing statement: it needs --model-signing", n)}
			}
		}
	}
	var rs []encryption.Recipient
	for _, s := range f.recipients {
		r, err := encryption.ParseRecipient(s)
		if err != nil {
			return nil, usageError{fmt.Errorf("--encrypt-recipient: %w", err)}
		}
		rs = append(rs, r)
	}
	return rs, nil
}

// pushedModel is what push --format json prints.
type pushedModel struct {
	pushOutput // manifest, blobs, bytes and seconds
	// Encrypted is true when the file layers are encrypted.
	Encrypted bool `json:"encrypted,omitempty"`
	// ModelSigning is the model-signing referrer attached.
	ModelSigning *ocispec.Descriptor `json:"modelSigning,omitempty"`
}

// pushSigned pushes dir into t, encrypted for rs when there are any, then
// signs the model-signing statement when asked.
func (f *pushSignFlags) pushSigned(cmd *cobra.Command, of *outputFlags, t *oras.Target, dir string, rs []encryption.Recipient, opts oras.PushOptions) error {
	var s *referrers.Signer
	if f.modelSigning {
		var err error
		if s, err = f.signer.signer(cmd); err != nil { // before any upload
			return err
		}
	}
	p, wait := of.progress(cmd)
	opts.Progress = p
	var desc ocispec.Descriptor
	var plain *ocispec.Manifest
	var pushed *oras.PushResult
	var err error
	if len(rs) > 0 {
		var res *oras.EncryptedPush
		res, err = oras.PushEncrypted(cmd.Context(), t, t.Reference, dir, rs, opts)
		if err == nil {
			desc, plain, pushed = res.Manifest, &res.Plaintext.Manifest, &res.PushResult
		}
	} else {
		pushed, err = oras.PushModel(cmd.Context(), t, t.Reference, dir, opts)
		if err == nil {
			desc = pushed.Manifest
		}
	}
	wait(err)
	if err != nil {
		return err
	}
	out := pushedModel{pushOutput: pushOutput{Reference: t.String(), PushResult: pushed}, Encrypted: len(rs) > 0}
	if s != nil {
		name := f.modelName
		if name == "" {
			name = path.Base(t.Name)
		}
		var ref ocispec.Descriptor
		if plain != nil {
			ref, err = referrers.AttestModelSigningPlaintext(cmd.Context(), t, desc, *plain, s, name, referrers.AttachOptions{})
		} else {
			ref, err = referrers.AttestModelSigning(cmd.Context(), t, desc, s, name, referrers.AttachOptions{})
		}
		if err != nil {
			return fmt.Errorf("pushed %s (%s), but the model-signing statement failed: %w", t, desc.Digest, err)
		}
		out.ModelSigning = &ref
	}
	if of.format == "json" {
		return printJSON(cmd.OutOrStdout(), out)
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "Pushed %s\nDigest: %s\n", t, desc.Digest)
	printPushSummary(w, pushed)
	if out.Encrypted {
		fmt.Fprintf(w, "Encrypted for: %d recipient(s) (not reproducible: every push has new keys)\n", len(rs))
	}
	if out.ModelSigning != nil {
		fmt.Fprintf(w, "Model signing: %s (signed by %s)\n", out.ModelSigning.Digest, s.Identity)
	}
	return nil
}
