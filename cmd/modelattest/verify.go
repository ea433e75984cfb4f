package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/modelattest/modelattest/events"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// verifyModel loads the policy and verifies the resolved model; it prints
// the report in format to w.
func verifyModel(cmd *cobra.Command, policyFile string, t *oras.Target, layout bool, desc ocispec.Descriptor, w io.Writer, format string) (*referrers.Report, error) {
	p, err := referrers.LoadPolicy(cmd.Context(), policyFile)
	if err != nil {
		return nil, err
	}
	rep, verr := referrers.VerifyModel(cmd.Context(), t, t.PolicyName(), desc, p, referrers.VerifyOptions{})
	if rep == nil {
		return nil, verr
	}
	if format == "json" {
		if err := printJSON(w, rep); err != nil {
			return rep, err
		}
	} else {
		printReport(w, t, rep)
	}
	return rep, verr
}

func printReport(w io.Writer, t *oras.Target, rep *referrers.Report) {
	result := "PASS"
	if !rep.Passed {
		result = "FAIL"
		if rep.Mode != referrers.ModeEnforce {
			result = "FAIL (" + string(rep.Mode) + " mode: not enforced)"
		}
	}
	fmt.Fprintf(w, "Model:   %s@%s\nPolicy:  %s, rule %d (%s)\nResult:  %s\n", t.Name, rep.Model.Digest, rep.Policy, rep.Rule, rep.Mode, result)
	if len(rep.Requirements) > 0 {
		fmt.Fprintln(w, "Requirements:")
	}
	for _, r := range rep.Requirements {
		if r.Satisfied {
			fmt.Fprintf(w, "  ok    %s (by %s)\n", r.What, strings.Join(r.By, ", "))
		} else {
			fmt.Fprintf(w, "  FAIL  %s: %s\n", r.What, r.Reason)
		}
	}
	if len(rep.NotCovered) > 0 {
		fmt.Fprintf(w, "Not covered: %s (the rule binds the model by model signing alone, which signs file names and contents, not the manifest)\n", strings.Join(rep.NotCovered, ", "))
	}
	if len(rep.Referrers) > 0 {
		fmt.Fprintln(w, "Referrers:")
	}
	for _, f := range rep.Referrers {
		what := f.PredicateType
		if f.Format != "" && f.Format != referrers.FormatSigstoreBundle {
			what = "Notary Project signature (" + f.Format + ")"
		}
		line := fmt.Sprintf("  %s%s %s %s", strings.Repeat("  ", f.Depth-1), f.Digest, what, f.Verdict)
		if len(f.VerifiedBy) > 0 {
			line += " by " + strings.Join(f.VerifiedBy, ", ")
		}
		if f.Signer != "" {
			line += ", signer " + f.Signer
		}
		if f.Reason != "" {
			line += ": " + f.Reason
		}
		fmt.Fprintln(w, line)
		for _, n := range f.Notes {
			fmt.Fprintf(w, "  %s    note: %s\n", strings.Repeat("  ", f.Depth-1), n)
		}
	}
}

func newVerifyCmd() *cobra.Command {
	var rf remoteFlags
	var of outputFlags
	var layout bool
	var policy string
	var vsa bool
	var verifierID string
	var sf signerFlags
	var ev eventFlags
	cmd := &cobra.Command{
		Use:   "verify REF --policy FILE",
		Short: "Verify a model's whole referrer graph (signatures, provenance, model signing) against a policy",
		Long: `Verify resolves REF to a digest once, discovers every referrer of that digest
(and their referrers, bounded in depth, count and size, with a cycle guard),
re-reads each from its own manifest, verifies each bundle against the trust
anchors of the policy rule that matches the repository, and checks what the
rule requires. Nothing the registry's referrers index says is trusted.

Exit codes: 0 the policy is satisfied (or the rule is warn/audit), 3 it is
not, 1 verification could not run.`,
		Example: `  modelattest verify --policy policy.yaml registry.example/models/llama:v1
  modelattest verify --policy policy.yaml --format json registry.example/models/llama@sha256:…
  modelattest verify --policy policy.yaml --oci-layout ./airgap:v1
  modelattest verify --policy policy.yaml --attach-vsa --verifier-id https://ci.acme.example/model-gate --key gate.key REF`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := of.check("text", "json"); err != nil {
				return err
			}
			if policy == "" {
				return usageError{fmt.Errorf("verify needs --policy FILE")}
			}
			if vsa && verifierID == "" {
				return usageError{fmt.Errorf("--attach-vsa needs --verifier-id URI (who verified; a consumer's rule lists the ids it accepts)")}
			}
			if err := ev.open(cmd, of.format); err != nil {
				return err
			}
			defer ev.close(cmd)
			t, desc, err := resolveTarget(cmd, args[0], layout, &rf)
			if err != nil {
				ev.record(events.FaceVerify, args[0], args[0], "", nil, err)
				return err
			}
			var s *referrers.Signer
			if vsa {
				if s, err = sf.signer(cmd); err != nil {
					return err
				}
			}
			rep, err := verifyModel(cmd, policy, t, layout, desc, cmd.OutOrStdout(), of.format)
			ev.record(events.FaceVerify, args[0], t.PolicyName(), desc.Digest, rep, err)
			if vsa && rep != nil {
				d, aerr := referrers.AttachVSA(cmd.Context(), t, desc, s, rep,
					referrers.VSAOptions{VerifierID: verifierID, PolicyURI: filepath.Base(policy)})
				if aerr != nil {
					return aerr
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "Verification summary (%s) attached: %s\n", referrers.PredicateVSA, d.Digest)
			}
			return err
		},
	}
	sf.add(cmd.Flags())
	ev.add(cmd.Flags())
	cmd.Flags().BoolVar(&vsa, "attach-vsa", false, "sign a SLSA verification summary of the result (with --key or --keyless) and attach it to the model")
	cmd.Flags().StringVar(&verifierID, "verifier-id", "", "with --attach-vsa: the verifier id (a URI naming this verifier) the summary carries")
	rf.add(cmd.Flags())
	cmd.Flags().StringVar(&of.format, "format", "text", "output format: text, json")
	cmd.Flags().BoolVar(&layout, "oci-layout", false, "REF is an OCI image layout DIR[:TAG|@DIGEST]")
	cmd.Flags().StringVar(&policy, "policy", "", "policy file (YAML or JSON)")
	return cmd
}
