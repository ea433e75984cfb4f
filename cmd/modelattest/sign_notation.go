package main

import (
	"fmt"
	"os"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// notationFlags make sign write a Notary Project signature. The switch is
// --notation, not --format notation: --format is the output format (text,
// json) on every command.
type notationFlags struct {
	enabled      bool
	envelope     string
	timestampURL string
	tsaRoot      string
	expiry       time.Duration
}

func (f *notationFlags) add(fs *pflag.FlagSet) {
	fs.BoolVar(&f.enabled, "notation", false, "make a Notary Project signature (what notation sign, AWS Signer and Harbor make) with --key and --certificate-chain, instead of a Sigstore bundle")
	fs.StringVar(&f.envelope, "signature-format", "cose", "Notary Project envelope: cose or jws (with --notation)")
	fs.StringVar(&f.timestampURL, "timestamp-url", "", "RFC 3161 timestamp authority to countersign with (with --notation; needs --timestamp-root-cert)")
	fs.StringVar(&f.tsaRoot, "timestamp-root-cert", "", "PEM root certificate of the --timestamp-url authority")
	fs.DurationVar(&f.expiry, "expiry", 0, "signature expiry after signing, e.g. 720h (with --notation; default none)")
}

// check refuses notation-only flags without --notation, and a bad envelope.
func (f *notationFlags) check(fs *pflag.FlagSet, sf *signerFlags) error {
	if !f.enabled {
		for _, n := range []string{"signature-format", "timestamp-url", "timestamp-root-cert", "expiry"} {
			if fs.Changed(n) {
				return usageError{fmt.Errorf("--%s needs --notation", n)}
			}
		}
		return nil
	}
	switch {
	case f.envelope != "cose" && f.envelope != "jws":
		return usageError{fmt.Errorf("--signature-format %q: want cose or jws", f.envelope)}
	case sf.keyless:
		return usageError{fmt.Errorf("--notation signs with --key and --certificate-chain, not --keyless")}
	case sf.key == "" || sf.certChain == "":
		return usageError{fmt.Errorf("--notation needs --key KEY and --certificate-chain FILE (the key's certificate first, ending at the root)")}
	case (f.timestampURL == "") != (f.tsaRoot == ""):
		return usageError{fmt.Errorf("--timestamp-url and --timestamp-root-cert go together")}
	}
	return nil
}

// sign makes the Notary Project signature of the resolved model.
func (f *notationFlags) sign(cmd *cobra.Command, sf *signerFlags, t *oras.Target, desc ocispec.Descriptor) (signResult, error) {
	chain, err := os.ReadFile(sf.certChain)
	if err != nil {
		return signResult{}, err
	}
	s, err := referrers.LoadNotationSigner(cmd.Context(), sf.key, chain, keyPassword(cmd))
	if err != nil {
		return signResult{}, err
	}
	opts := referrers.NotationSignOptions{EnvelopeType: referrers.NotationEnvelopeCOSE, TimestampURL: f.timestampURL, Expiry: f.expiry}
	if f.envelope == "jws" {
		opts.EnvelopeType = referrers.NotationEnvelopeJWS
	}
	if f.tsaRoot != "" {
		if opts.TSARoots, err = referrers.ReadCertificates(f.tsaRoot); err != nil {
			return signResult{}, err
		}
	}
	res, err := referrers.SignNotation(cmd.Context(), t, desc, s, opts)
	if err != nil {
		return signResult{}, err
	}
	return signResult{Subject: desc, Referrer: res.Referrer, Format: res.Format, Signer: s.Identity}, nil
}
