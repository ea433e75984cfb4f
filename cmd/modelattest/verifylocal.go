package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/modelattest/modelattest/referrers"
)

// localSignerFlags say who must have signed a model on disk: exactly one
// of a public key, a certificate chain, a keyless identity or a policy.
type localSignerFlags struct {
	key, certChain, policy                    string
	identity, identityRegExp                  string
	issuer, issuerRegExp, trustedRoot         string
	signature                                 string
	ignorePaths                               []string
	keylessSet, keySet, chainSet, policyIsSet bool
}

func (f *localSignerFlags) check(cmd *cobra.Command) error {
	fs := cmd.Flags()
	f.keySet, f.chainSet, f.policyIsSet = f.key != "", f.certChain != "", f.policy != ""
	for _, n := range []string{"certificate-identity", "certificate-identity-regexp", "certificate-oidc-issuer", "certificate-oidc-issuer-regexp", "trusted-root"} {
		f.keylessSet = f.keylessSet || fs.Changed(n)
	}
	n := 0
	for _, set := range []bool{f.keySet, f.chainSet, f.keylessSet, f.policyIsSet} {
		if set {
			n++
		}
	}
	if n != 1 {
		return usageError{fmt.Errorf("verify-local needs exactly one signer: --key PUB, --certificate-chain PEM, keyless identity flags (--certificate-identity[-regexp], --certificate-oidc-issuer[-regexp], --trusted-root) or --policy FILE")}
	}
	if f.keylessSet {
		if f.identity == "" && f.identityRegExp == "" || f.issuer == "" && f.issuerRegExp == "" || f.trustedRoot == "" {
			return usageError{fmt.Errorf("a keyless signer needs --certificate-identity (or -regexp), --certificate-oidc-issuer (or -regexp) and --trusted-root FILE")}
		}
	}
	return nil
}

// verifier builds the one trusted signer the flags name (not --policy).
func (f *localSignerFlags) verifier(cmd *cobra.Command) (*referrers.Verifier, error) {
	switch {
	case f.keySet:
		return referrers.LoadKeyVerifier(cmd.Context(), "key "+f.key, f.key)
	case f.chainSet:
		pem, err := os.ReadFile(f.certChain)
		if err != nil {
			return nil, fmt.Errorf("certificate chain: %w", err)
		}
		return referrers.NewX509Verifier("certificate chain "+f.certChain, pem, referrers.X509Constraints{})
	default:
		tr, err := os.ReadFile(f.trustedRoot)
		if err != nil {
			return nil, fmt.Errorf("trusted root: %w", err)
		}
		id := f.identity + f.identityRegExp
		return referrers.NewKeylessVerifier("keyless "+id, tr, referrers.KeylessIdentity{Issuer: f.issuer, IssuerRegExp: f.issuerRegExp,
			Subject: f.identity, SubjectRegExp: f.identityRegExp})
	}
}

func newVerifyLocalCmd() *cobra.Command {
	var f localSignerFlags
	var of outputFlags
	cmd := &cobra.Command{
		Use:   "verify-local PATH [--signature FILE] (--key PUB | --certificate-chain PEM | --certificate-identity ID ... | --policy FILE)",
		Short: "Verify a model file or folder already on disk against its OpenSSF model-signing signature",
		Long: `Verify-local checks a model on disk, as "model_signing verify" does: the
signature (a Sigstore bundle, model.sig inside PATH by default) must verify
against the signer given, and its statement must list exactly the files
found, with their sha256 digests. PATH may be a folder or a single file.

In a folder, the statement's ignore_paths are left out (.git*, model.sig
when it names none), and so are --ignore-paths and the signature file.
Symbolic links and special files are refused.

The signer is one of: --key PUB, --certificate-chain PEM (the roots of a
company PKI, as model_signing's certificate method), keyless identity flags
with a --trusted-root, or --policy FILE, whose rule matching PATH's absolute
path names the signers of its model-signing requirement.

This is the check a model server runs at start-up on a volume no one pulled
through modelattest.

Exit codes: 0 verified (or the policy rule is warn/audit), 3 verification
failed, 1 it could not run, 2 bad command line.`,
		Example: `  modelattest verify-local ./llama --key release.pub
  modelattest verify-local ./model.gguf --signature model.gguf.sig --certificate-chain ca.pem
  modelattest verify-local /models/llama --policy /etc/modelattest/policy.yaml --ignore-paths cache`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := of.check("text", "json"); err != nil {
				return err
			}
			if err := f.check(cmd); err != nil {
				return err
			}
			opts := referrers.OMSPathOptions{Signature: f.signature, IgnorePaths: f.ignorePaths}
			var rep *referrers.OMSPathReport
			var verr error
			if f.policyIsSet {
				p, err := referrers.LoadPolicy(cmd.Context(), f.policy)
				if err != nil {
					return err
				}
				rep, verr = referrers.VerifyOMSPathPolicy(cmd.Context(), args[0], p, opts)
			} else {
				v, err := f.verifier(cmd)
				if err != nil {
					return err
				}
				rep, verr = referrers.VerifyOMSPath(cmd.Context(), args[0], []*referrers.Verifier{v}, opts)
			}
			if rep == nil {
				return verr
			}
			if of.format == "json" {
				if err := printJSON(cmd.OutOrStdout(), rep); err != nil {
					return err
				}
			} else {
				printLocalReport(cmd.OutOrStdout(), rep)
			}
			return verr
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.signature, "signature", "", "the model-signing bundle (default: model.sig inside PATH; required for a single file)")
	fl.StringVar(&f.key, "key", "", "trusted public key (PEM, cosign.pub) or KMS URI")
	fl.StringVar(&f.certChain, "certificate-chain", "", "PEM file of trusted CA certificates (a company PKI)")
	fl.StringVar(&f.identity, "certificate-identity", "", "keyless: the signer's identity (certificate SAN), exactly")
	fl.StringVar(&f.identityRegExp, "certificate-identity-regexp", "", "keyless: a regular expression the whole identity must match")
	fl.StringVar(&f.issuer, "certificate-oidc-issuer", "", "keyless: the OIDC issuer, exactly")
	fl.StringVar(&f.issuerRegExp, "certificate-oidc-issuer-regexp", "", "keyless: a regular expression the whole issuer must match")
	fl.StringVar(&f.trustedRoot, "trusted-root", "", "keyless: Sigstore trusted_root.json (Fulcio and Rekor keys); read offline")
	fl.StringVar(&f.policy, "policy", "", "policy file: the rule matching PATH's absolute path names the signers")
	fl.StringSliceVar(&f.ignorePaths, "ignore-paths", nil, "paths inside PATH to leave out, relative to it or absolute (repeatable, comma-separated)")
	fl.StringVar(&of.format, "format", "text", "output format: text, json")
	return cmd
}

func printLocalReport(w io.Writer, rep *referrers.OMSPathReport) {
	result := "PASS"
	if !rep.Passed {
		result = "FAIL"
		if rep.Mode != "" && rep.Mode != referrers.ModeEnforce {
			result = "FAIL (" + string(rep.Mode) + " mode: not enforced)"
		}
	}
	fmt.Fprintf(w, "Model:      %s (%s)\nSignature:  %s\n", rep.Path, rep.Kind, rep.Signature)
	if rep.Rule != nil {
		fmt.Fprintf(w, "Policy:     %s, rule %d (%s)\n", rep.Policy, *rep.Rule, rep.Mode)
	}
	fmt.Fprintf(w, "Result:     %s\n", result)
	if len(rep.VerifiedBy) > 0 {
		fmt.Fprintf(w, "Signed by:  %s\n", strings.Join(rep.VerifiedBy, ", "))
	}
	if rep.Digest != "" {
		fmt.Fprintf(w, "Subject:    %s %s\n", rep.Name, rep.Digest)
	}
	if rep.Passed {
		fmt.Fprintf(w, "Files:      %d signed, none unsigned\n", rep.Files)
	}
	if len(rep.IgnorePaths) > 0 {
		fmt.Fprintf(w, "Ignored:    %s\n", strings.Join(rep.IgnorePaths, ", "))
	}
	if len(rep.NotChecked) > 0 {
		fmt.Fprintf(w, "Not checked on disk: %s (they sign a manifest in a registry)\n", strings.Join(rep.NotChecked, ", "))
	}
	if rep.Reason != "" {
		fmt.Fprintf(w, "Reason:     %s\n", rep.Reason)
	}
}
