package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/modelattest/modelattest/modelspec"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

var version = "dev"

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "modelattest",
		Short:         "Package, sign, attest and verify ML models on OCI registries",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newAdmissionCmd())
	root.AddCommand(newPackCmd(), newPushCmd(), newPullCmd(), newCopyCmd(), newInspectCmd(),
		newDiscoverCmd(), newSignCmd(), newAttestCmd(), newVerifyCmd(), newKeygenCmd(), newRegistryCmd(), newPolicyCmd(),
		newLoginCmd(), newLogoutCmd(), newAuditCmd())
	root.AddCommand(newVerifyLocalCmd())
	root.AddCommand(newRuntimeCmd())
	usageErrors(root)
	return root
}

func isVerificationFailure(err error) bool {
	return errors.Is(err, oras.ErrIntegrity) || errors.Is(err, modelspec.ErrUnsafePath) || errors.Is(err, modelspec.ErrLimit) ||
		errors.Is(err, referrers.ErrVerification) || errors.Is(err, referrers.ErrPolicyNotSatisfied)
}

// remoteFlags are the ORAS-style flags that say how to reach a registry.
type remoteFlags struct {
	opts          oras.RemoteOptions
	passwordStdin bool
	distSpec      string
}

func (f *remoteFlags) add(fs *pflag.FlagSet) {
	fs.StringVarP(&f.opts.Username, "username", "u", "", "registry user name")
	fs.StringVarP(&f.opts.Password, "password", "p", "", "registry password or identity token")
	fs.BoolVar(&f.passwordStdin, "password-stdin", false, "read the password from standard input")
	fs.StringVar(&f.opts.RegistryConfig, "registry-config", "", "Docker config file with credentials (default: ~/.docker/config.json)")
	fs.BoolVar(&f.opts.PlainHTTP, "plain-http", false, "talk HTTP instead of HTTPS")
	fs.BoolVar(&f.opts.Insecure, "insecure", false, "do not verify the registry's TLS certificate")
	fs.StringVar(&f.opts.CAFile, "ca-file", "", "PEM file of extra trusted CA certificates")
	fs.StringVar(&f.distSpec, "distribution-spec", "", "force referrers handling: v1.1-referrers-api or v1.1-referrers-tag")
}

func (f *remoteFlags) options(stdin io.Reader) (oras.RemoteOptions, error) {
	o := f.opts
	if f.passwordStdin {
		if o.Password != "" {
			return o, usageError{fmt.Errorf("--password and --password-stdin are exclusive")}
		}
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && err != io.EOF {
			return o, fmt.Errorf("read password: %w", err)
		}
		o.Password = strings.TrimRight(line, "\r\n")
	}
	switch oras.ReferrersMode(f.distSpec) {
	case oras.ReferrersAuto, oras.ReferrersAPI, oras.ReferrersTag:
		o.DistributionSpec = oras.ReferrersMode(f.distSpec)
	default:
		return o, usageError{fmt.Errorf("--distribution-spec %q: want %s or %s", f.distSpec, oras.ReferrersAPI, oras.ReferrersTag)}
	}
	return o, nil
}

// outputFlags choose the output format and progress.
type outputFlags struct {
	format     string
	noProgress bool
}

func (f *outputFlags) add(fs *pflag.FlagSet, formats ...string) {
	fs.StringVar(&f.format, "format", "text", "output format: "+strings.Join(formats, ", "))
	fs.BoolVar(&f.noProgress, "no-progress", false, "do not show progress bars")
}

func (f *outputFlags) check(formats ...string) error {
	for _, v := range formats {
		if f.format == v {
			return nil
		}
	}
	return usageError{fmt.Errorf("--format %q: want one of %s", f.format, strings.Join(formats, ", "))}
}

// progress returns bars on a terminal, and the function that ends them
// with the transfer's error.
func (f *outputFlags) progress(cmd *cobra.Command) (oras.Progress, func(error)) {
	if f.noProgress || f.format == "json" {
		return nil, func(error) {}
	}
	return newBars(cmd.ErrOrStderr())
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
