package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/modelattest/modelattest/audit"
	"github.com/modelattest/modelattest/events"
	"github.com/modelattest/modelattest/referrers"
)

func newAuditCmd() *cobra.Command {
	var rf remoteFlags
	var of outputFlags
	var sf signerFlags
	var ev eventFlags
	var layout bool
	var policy, output, reposFile, controls, verifierID string
	var concurrency int
	var maxRPS float64
	var watch time.Duration
	var state, warnExpiry string
	cmd := &cobra.Command{
		Use:   "audit TARGET... --policy FILE --output DIR",
		Short: "Verify every model in repositories, registries or OCI layouts and write the evidence an auditor reads",
		Long: `Audit lists every tag of each TARGET — a repository (host/repo), a whole
registry (host, through its catalog) or, with --oci-layout, an OCI layout —
resolves each tag once, verifies each digest once against the policy (tags
that share a digest are reported together), and writes DIR:

  report.json (+ report.schema.json), report.md, report.html (self-contained,
  each model's referrer graph as SVG), events.jsonl, the policy and
  policy.sha256; with --key, vsa/ (a signed verification summary per model),
  SHA256SUMS and SHA256SUMS.sigstore.json (cosign verify-blob --bundle).

Registries without a catalog (ECR, GHCR, Docker Hub) take --repositories FILE.

Exit codes: 0 every model passed, 3 a model failed, 1 the audit could not
run (or part of it: a repository or tag could not be read).`,
		Example: `  modelattest audit --policy policy.yaml --output evidence/ registry.example/models/llama
  modelattest audit --policy policy.yaml --output evidence/ --controls soc2 --key audit.key registry.example
  modelattest audit --policy policy.yaml --output evidence/ --repositories repos.txt`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := of.check("text", "json"); err != nil {
				return err
			}
			switch {
			case policy == "":
				return usageError{fmt.Errorf("audit needs --policy FILE")}
			case watch > 0 && (state == "" || output != ""):
				return usageError{fmt.Errorf("audit --watch needs --state FILE and writes events (--events, --events-url), not --output")}
			case watch < 0 || (watch == 0 && state != ""):
				return usageError{fmt.Errorf("--state goes with --watch INTERVAL")}
			case watch == 0 && warnExpiry != "":
				return usageError{fmt.Errorf("--warn-expiry goes with --watch INTERVAL")}
			case watch == 0 && output == "":
				return usageError{fmt.Errorf("audit needs --output DIR")}
			}
			var window time.Duration
			if warnExpiry != "" {
				var err error
				if window, err = audit.ParseWindow(warnExpiry); err != nil {
					return usageError{err}
				}
			}
			if reposFile != "" {
				more, err := readRepositories(reposFile)
				if err != nil {
					return err
				}
				args = append(args, more...)
			}
			if len(args) == 0 {
				return usageError{fmt.Errorf("audit needs a TARGET (repository, registry host or, with --oci-layout, a layout) or --repositories FILE")}
			}
			if concurrency < 1 || maxRPS < 0 {
				return usageError{fmt.Errorf("--concurrency must be 1 or more and --max-rps 0 or more")}
			}
			var ctl *audit.Controls
			if controls != "" {
				var err error
				if ctl, err = audit.LoadControls(controls); err != nil {
					return usageError{err}
				}
			}
			if output != "" {
				if err := audit.CheckOutput(output); err != nil {
					return err
				}
			}
			ro, err := rf.options(cmd.InOrStdin())
			if err != nil {
				return err
			}
			var signer *referrers.Signer
			if sf.key != "" || sf.keyless {
				if signer, err = sf.signer(cmd); err != nil {
					return err
				}
			}
			policyBytes, err := os.ReadFile(policy)
			if err != nil {
				return fmt.Errorf("policy: %w", err)
			}
			p, err := referrers.LoadPolicy(cmd.Context(), policy)
			if err != nil {
				return err
			}
			if err := ev.open(cmd, of.format); err != nil {
				return err
			}
			defer ev.close(cmd)
			opts := audit.Options{Policy: p, Remote: ro, Layout: layout, Concurrency: concurrency, MaxRPS: maxRPS,
				Sink: ev.sink, Controls: ctl, Version: version}
			if !of.noProgress && of.format != "json" && isTerminal(cmd.ErrOrStderr()) {
				opts.Progress = func(done, total int) { fmt.Fprintf(cmd.ErrOrStderr(), "\rverified %d/%d models", done, total) }
			}
			if watch > 0 {
				opts.Progress = nil
				return audit.Watch(cmd.Context(), args, opts, state, watch, window, func(e events.Event) {
					if ev.sink != nil {
						ev.sink.Emit(e)
					}
				}, func(rep *audit.Report, evs []events.Event) {
					for _, e := range evs {
						fmt.Fprintf(cmd.OutOrStdout(), "%s %s: %s\n", e.Time.Format(time.RFC3339), e.Subject, strings.Join(e.Data.Unmapped.Changes, "; "))
					}
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: %d models, %d changed\n", time.Now().UTC().Format(time.RFC3339), rep.Summary.Models, len(evs))
				})
			}
			rep, err := audit.Run(cmd.Context(), args, opts)
			if opts.Progress != nil {
				fmt.Fprintln(cmd.ErrOrStderr())
			}
			if err != nil {
				return err
			}
			if err := audit.Write(cmd.Context(), output, rep, audit.Evidence{PolicyName: filepath.Base(policy), Policy: policyBytes, Signer: signer, VerifierID: verifierID}); err != nil {
				return err
			}
			if of.format == "json" {
				if err := printJSON(cmd.OutOrStdout(), rep); err != nil {
					return err
				}
			} else {
				printAudit(cmd, rep, output)
			}
			switch {
			case rep.Failed():
				return fmt.Errorf("%w: %d of %d models failed the policy (see %s)", referrers.ErrPolicyNotSatisfied, rep.Summary.Failed, rep.Summary.Models, filepath.Join(output, "report.md"))
			case rep.Incomplete():
				return fmt.Errorf("audit incomplete: %d models could not be verified, %d targets or tags could not be read (see %s)", rep.Summary.Errors, len(rep.Problems), filepath.Join(output, "report.md"))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&policy, "policy", "", "policy file (YAML or JSON)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "evidence folder to create (must be new or empty)")
	cmd.Flags().BoolVar(&layout, "oci-layout", false, "every TARGET is an OCI image layout directory")
	cmd.Flags().StringVar(&reposFile, "repositories", "", "file listing repositories (host/repo), one a line, # comments: for registries without a catalog")
	cmd.Flags().IntVar(&concurrency, "concurrency", 4, "models verified at once")
	cmd.Flags().Float64Var(&maxRPS, "max-rps", 0, "at most this many registry requests per second (0: no limit)")
	cmd.Flags().StringVar(&controls, "controls", "", "map requirements to controls: "+strings.Join(audit.Frameworks(), ", "))
	cmd.Flags().DurationVar(&watch, "watch", 0, "re-run every INTERVAL (e.g. 5m) and emit an event only for what changed; stop with Ctrl-C")
	cmd.Flags().StringVar(&warnExpiry, "warn-expiry", "", "with --watch: announce, once, each trust anchor part (root or intermediate certificate, trusted root CA/log, CRL nextUpdate) expiring within this window (e.g. 30d)")
	cmd.Flags().StringVar(&state, "state", "", "with --watch: file remembering tags, digests and verdicts, so a restart does not re-announce")
	cmd.Flags().StringVar(&verifierID, "verifier-id", audit.DefaultVerifierID, "verifier id in the signed verification summaries (with --key)")
	of.add(cmd.Flags(), "text", "json")
	rf.add(cmd.Flags())
	sf.add(cmd.Flags())
	ev.add(cmd.Flags())
	return cmd
}

// readRepositories reads one repository per line; blank lines and #
// comments are skipped.
func readRepositories(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--repositories: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.ContainsAny(line, " \t") || !strings.Contains(line, "/") {
			return nil, usageError{fmt.Errorf("--repositories %s line %d: %q is not a repository (host/name)", path, n, line)}
		}
		out = append(out, line)
	}
	return out, sc.Err()
}

func printAudit(cmd *cobra.Command, rep *audit.Report, dir string) {
	w := cmd.OutOrStdout()
	for _, m := range rep.Models {
		line := fmt.Sprintf("%-5s %s@%s (%s)", strings.ToUpper(m.Verdict), m.Repository, m.Digest, strings.Join(m.Tags, ", "))
		for _, r := range m.Requirements {
			if r.Outcome != "satisfied" {
				line += ": " + r.What + ": " + r.Reason
				break
			}
		}
		if m.Error != "" {
			line += ": " + m.Error
		}
		fmt.Fprintln(w, line)
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "ERROR %s: %s\n", p.Target, p.Error)
	}
	s := rep.Summary
	fmt.Fprintf(w, "Audited %d tags, %d models in %d repositories: %d passed, %d failed, %d errors; %d registry requests\nEvidence: %s\n",
		s.Tags, s.Models, s.Repositories, s.Passed, s.Failed, s.Errors, rep.Requests, dir)
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
