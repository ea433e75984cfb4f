package main

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/modelattest/modelattest/events"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
	tee "github.com/modelattest/modelattest/runtime"
)

func newRuntimeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "runtime",
		Short: "Runtime attestation: prove which model a confidential VM loaded (docs/RUNTIME.md)",
	}
	cmd.AddCommand(newRuntimeVerifyCmd(), newRuntimeLoadCmd(), newRuntimeBrokerCmd())
	return cmd
}

// parseNonce reads --nonce: hex, 1 to 64 bytes.
func parseNonce(s string) ([]byte, error) {
	n, err := hex.DecodeString(s)
	if err != nil || len(n) == 0 || len(n) > 64 {
		return nil, usageError{fmt.Errorf("--nonce %q: want 2 to 128 hex digits", s)}
	}
	return n, nil
}

func newRuntimeVerifyCmd() *cobra.Command {
	var rf remoteFlags
	var of outputFlags
	var ev eventFlags
	var policy, nonceHex, rootsFile, crlFile string
	var measurements []string
	var layout bool
	cmd := &cobra.Command{
		Use:   "verify EVIDENCE --policy FILE --nonce HEX",
		Short: "Verify runtime evidence: TEE report, chain, TCB, measurement, REPORT_DATA binding, nonce, and the model against the policy",
		Long: `Verify checks, offline and step by step: the SEV-SNP report's chain up to AMD's
roots (embedded) or the policy's / --tee-roots roots; the CRL when --crl is
given (else revocation is not checked offline); the report signature; the TCB
floor; the debug and migration bits; the launch measurement allowlist; the
policy digest; the nonce; REPORT_DATA equal to the binding recomputed; and the
model digest satisfying the policy, by re-walking its referrer graph (the
evidence's own verification report is informative only).

TEE requirements come from the policy's runtime: section; --tee-roots and
--measurement override it. Verify is stateless: it checks the nonce it is
given; single-use nonces are the relying party's job.

Exit codes: 0 accepted, 3 refused, 1 verification could not run.`,
		Example: `  modelattest runtime verify evidence.json --policy policy.yaml --nonce 6e6f6e6365
  modelattest runtime verify evidence.json --policy policy.yaml --nonce "$N" --tee-roots ark.pem --crl amd-milan.crl`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := of.check("text", "json"); err != nil {
				return err
			}
			if policy == "" || nonceHex == "" {
				return usageError{fmt.Errorf("runtime verify needs --policy FILE and --nonce HEX")}
			}
			nonce, err := parseNonce(nonceHex)
			if err != nil {
				return err
			}
			if err := ev.open(cmd, of.format); err != nil {
				return err
			}
			defer ev.close(cmd)
			evidence, err := tee.ReadEvidence(args[0])
			if err != nil {
				ev.record(events.FaceRuntimeVerify, args[0], args[0], "", nil, err)
				return err
			}
			repo, dgst := evidence.Model.Reference, digest.Digest(evidence.Model.Digest)
			opts, pol, err := runtimeVerifyOptions(cmd, policy, rootsFile, crlFile, measurements, nonce)
			if err != nil {
				ev.record(events.FaceRuntimeVerify, repo, repo, dgst, nil, err)
				return err
			}
			var modelReport *referrers.Report
			opts.VerifyModel = func(ctx context.Context, ref, d string) error {
				t, err := oras.Open(ctx, ref, layout, mustRemote(cmd, &rf))
				if err != nil {
					return err
				}
				repo = t.PolicyName()
				desc, err := oras.Resolve(ctx, t, d)
				if err != nil {
					return err
				}
				rep, err := referrers.VerifyModel(ctx, t, t.PolicyName(), desc, pol, referrers.VerifyOptions{})
				modelReport = rep
				if err != nil {
					return err
				}
				if !rep.Passed {
					return fmt.Errorf("the model fails the policy (rule mode %s)", rep.Mode)
				}
				return nil
			}
			res, verr := tee.Verify(cmd.Context(), evidence, opts)
			if modelReport != nil && verr == nil {
				ev.record(events.FaceRuntimeVerify, evidence.Model.Reference, repo, dgst, modelReport, nil)
			} else {
				ev.record(events.FaceRuntimeVerify, evidence.Model.Reference, repo, dgst, nil, verr)
			}
			if of.format == "json" {
				if err := printJSON(cmd.OutOrStdout(), res); err != nil {
					return err
				}
			} else {
				printRuntimeResult(cmd.OutOrStdout(), evidence, res)
			}
			return verr
		},
	}
	ev.add(cmd.Flags())
	rf.add(cmd.Flags())
	cmd.Flags().StringVar(&of.format, "format", "text", "output format: text, json")
	cmd.Flags().StringVar(&policy, "policy", "", "policy file (YAML or JSON) with a runtime: section")
	cmd.Flags().StringVar(&nonceHex, "nonce", "", "the nonce issued to the guest, hex")
	cmd.Flags().StringVar(&rootsFile, "tee-roots", "", "PEM file of trusted TEE roots (AMD ARKs; for TDX, required: Intel's SGX Root CA); overrides the policy's runtime.roots")
	cmd.Flags().StringArrayVar(&measurements, "measurement", nil, "accepted launch measurement, hex (repeatable); replaces the policy's runtime.measurements")
	cmd.Flags().StringVar(&crlFile, "crl", "", "AMD CRL file (DER or PEM); without it revocation is not checked offline")
	cmd.Flags().BoolVar(&layout, "oci-layout", false, "the evidence's model reference is an OCI image layout DIR")
	return cmd
}

// mustRemote is rf.options for a callback that cannot return a usage
// error; flags were validated when the command started.
func mustRemote(cmd *cobra.Command, rf *remoteFlags) oras.RemoteOptions {
	ro, _ := rf.options(cmd.InOrStdin())
	return ro
}

// runtimeVerifyOptions loads the policy, its runtime: section, and the
// flags that override it.
func runtimeVerifyOptions(cmd *cobra.Command, policy, rootsFile, crlFile string, measurements []string, nonce []byte) (tee.VerifyOptions, *referrers.Policy, error) {
	pol, err := referrers.LoadPolicy(cmd.Context(), policy)
	if err != nil {
		return tee.VerifyOptions{}, nil, err
	}
	req, err := tee.LoadRequirements(policy)
	if err != nil {
		return tee.VerifyOptions{}, nil, err
	}
	o := tee.VerifyOptions{Requirements: req, Measurements: measurements, Nonce: nonce, PolicyDigest: pol.Digest.String()}
	if rootsFile != "" {
		if o.Roots, err = tee.LoadRoots(rootsFile); err != nil {
			return o, nil, err
		}
	}
	if crlFile != "" {
		raw, err := os.ReadFile(crlFile)
		if err != nil {
			return o, nil, fmt.Errorf("--crl: %w", err)
		}
		if b, _ := pem.Decode(raw); b != nil {
			raw = b.Bytes
		}
		if o.CRL, err = x509.ParseRevocationList(raw); err != nil {
			return o, nil, fmt.Errorf("--crl %s: %w", crlFile, err)
		}
	}
	return o, pol, nil
}

func printRuntimeResult(w io.Writer, ev *tee.Evidence, res *tee.Result) {
	if ev.Insecure {
		fmt.Fprintf(w, "%s\n", tee.InsecureWarning)
	}
	fmt.Fprintf(w, "Evidence: %s from %s (%s)\nModel:    %s@%s\n", ev.Platform, ev.Provider, ev.Format, ev.Model.Reference, ev.Model.Digest)
	for _, s := range res.Steps {
		mark := "ok  "
		if !s.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %s  %s: %s\n", mark, s.Name, s.Detail)
	}
	result := "PASS"
	if !res.Passed {
		result = "FAIL"
	}
	if res.Passed && ev.Insecure {
		result = "PASS (INSECURE simulated evidence)"
	}
	fmt.Fprintf(w, "Result:   %s\n", result)
}

func newRuntimeLoadCmd() *cobra.Command {
	var rf remoteFlags
	var ev eventFlags
	var out, policy, nonceHex, evidenceFile, provider, simRoot, brokerURL, brokerCA string
	var layout bool
	cmd := &cobra.Command{
		Use:   "load REF -o DIR --policy FILE (--nonce HEX | --broker URL) --evidence FILE --tee PROVIDER",
		Short: "Verified pull of a model, then TEE evidence binding it (run inside the confidential VM)",
		Long: `Load pulls REF with the policy enforced (nothing lands unless it passes, whatever
the rule's mode), then asks the TEE for a report whose REPORT_DATA binds the
manifest digest, the policy digest and the nonce, and writes the evidence.

Providers (--tee): configfs-tsm (Linux TSM reports, kernels >= 6.7), sev-guest
(/dev/sev-guest), auto (the first present), simulated-snp (INSECURE: a local
chain under --simulated-root DIR; DIR/roots.pem is what a verifier would trust).

With --broker URL (an encrypted model), the nonce comes from the broker:
once the model passes the policy, load makes an ephemeral P-256 key, binds
its SHA-256 into the evidence, posts the evidence to the broker, unwraps
the layer keys it releases, and decrypts while pulling. Nothing lands unless
the policy passes, the broker releases the keys and every layer decrypts and
checks; the evidence file is written last.`,
		Example: `  modelattest runtime load registry.example/models/m:v1 -o /models/m --policy policy.yaml \
      --nonce "$NONCE" --evidence evidence.json --tee configfs-tsm
  modelattest runtime load registry.example/models/m:v1 -o /models/m --policy policy.yaml \
      --broker https://broker.example:8444 --evidence evidence.json --tee configfs-tsm`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" || policy == "" || evidenceFile == "" || provider == "" || (nonceHex == "") == (brokerURL == "") {
				return usageError{fmt.Errorf("runtime load needs -o DIR, --policy FILE, --evidence FILE, --tee PROVIDER, and either --nonce HEX or --broker URL")}
			}
			var nonce []byte
			var bc *tee.BrokerClient
			var err error
			if brokerURL != "" {
				if layout {
					return usageError{fmt.Errorf("--broker needs a registry reference: the broker re-verifies the model in its registry, not in a local layout")}
				}
				if bc, err = brokerClient(brokerURL, brokerCA); err != nil {
					return err
				}
			} else if brokerCA != "" {
				return usageError{fmt.Errorf("--broker-ca-file needs --broker URL")}
			} else if nonce, err = parseNonce(nonceHex); err != nil {
				return err
			}
			p, err := tee.NewProvider(provider, simRoot)
			if err != nil {
				return usageError{err}
			}
			if provider == tee.SimulatedName {
				fmt.Fprintln(cmd.ErrOrStderr(), "WARNING:", tee.InsecureWarning)
			}
			if err := ev.open(cmd, "text"); err != nil {
				return err
			}
			defer ev.close(cmd)
			t, desc, err := resolveTarget(cmd, args[0], layout, &rf)
			if err != nil {
				ev.record(events.FacePull, args[0], args[0], "", nil, err)
				return err
			}
			pol, err := referrers.LoadPolicy(cmd.Context(), policy)
			if err != nil {
				ev.record(events.FacePull, args[0], t.Name, desc.Digest, nil, err)
				return err
			}
			if bc != nil {
				evidence, err := runtimeBrokerPull(cmd, t, desc, out, pol, &ev, args[0], bc, p)
				if err != nil {
					return err
				}
				if evidence == nil {
					return fmt.Errorf("runtime load: the pull ended without asking the broker")
				}
				if err := tee.WriteEvidence(evidenceFile, evidence); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Loaded %s@%s into %s (decrypted with keys released by %s)\nEvidence: %s (%s, %s)\n",
					t.Name, desc.Digest, out, brokerURL, evidenceFile, evidence.Platform, evidence.Provider)
				return nil
			}
			rep, err := runtimePull(cmd, t, desc, out, pol, &ev, args[0])
			if err != nil {
				return err
			}
			verification, err := json.Marshal(rep)
			if err != nil {
				return err
			}
			evidence, err := tee.Collect(cmd.Context(), p, tee.CollectOptions{
				Reference:    args[0],
				Binding:      tee.Binding{ManifestDigest: desc.Digest.String(), PolicyDigest: pol.Digest.String(), Nonce: nonce},
				Verification: verification,
			})
			if err != nil {
				return err
			}
			if err := tee.WriteEvidence(evidenceFile, evidence); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Loaded %s@%s into %s\nEvidence: %s (%s, %s)\n", t.Name, desc.Digest, out, evidenceFile, evidence.Platform, evidence.Provider)
			return nil
		},
	}
	ev.add(cmd.Flags())
	rf.add(cmd.Flags())
	cmd.Flags().StringVarP(&out, "output", "o", "", "folder to pull the model into")
	cmd.Flags().StringVar(&policy, "policy", "", "policy file (YAML or JSON)")
	cmd.Flags().StringVar(&nonceHex, "nonce", "", "the relying party's nonce, hex")
	cmd.Flags().StringVar(&evidenceFile, "evidence", "", "file to write the evidence to (JSON)")
	cmd.Flags().StringVar(&provider, "tee", "", "TEE provider: configfs-tsm, sev-guest, auto, simulated-snp (INSECURE)")
	cmd.Flags().StringVar(&simRoot, "simulated-root", "", "with --tee simulated-snp: folder of its INSECURE local chain (created on first use)")
	cmd.Flags().BoolVar(&layout, "oci-layout", false, "REF is an OCI image layout DIR[:TAG|@DIGEST]")
	cmd.Flags().StringVar(&brokerURL, "broker", "", "key broker URL (runtime broker serve): the nonce comes from it and it releases the layer keys")
	cmd.Flags().StringVar(&brokerCA, "broker-ca-file", "", "PEM CA certificates for an https:// --broker, besides the system's")
	return cmd
}

// runtimePull is a verified pull that lands nothing unless the model
// passes, whatever the rule's mode: evidence is never made for a model
// that failed its policy.
func runtimePull(cmd *cobra.Command, t *oras.Target, desc ocispec.Descriptor, out string, pol *referrers.Policy, ev *eventFlags, ref string) (*referrers.Report, error) {
	decided := false
	rep, _, err := referrers.PullVerified(cmd.Context(), t, desc, out, pol, referrers.PullVerifiedOptions{
		OnVerified: func(rep *referrers.Report) error {
			decided = true
			ev.record(events.FacePull, ref, rep.Repository, desc.Digest, rep, nil)
			printReport(cmd.ErrOrStderr(), t, rep)
			if !rep.Passed {
				return fmt.Errorf("%w: %s fails the policy (rule mode %s): no evidence is made for it", referrers.ErrPolicyNotSatisfied, desc.Digest, rep.Mode)
			}
			return nil
		},
	})
	if !decided {
		ev.record(events.FacePull, ref, t.Name, desc.Digest, nil, err)
	}
	return rep, err
}
