package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/modelattest/modelattest/admission"
)

func newAdmissionCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admission",
		Short: "Kubernetes admission webhook that admits only verified models",
		Long: `The admission webhook checks every model a workload references (image
volumes, in-scope container images, KServe oci:// storage URIs) against the
same policy file verify reads, before anything is scheduled. See
docs/ADMISSION.md.`,
	}
	cmd.AddCommand(newAdmissionServeCmd(), newAdmissionManifestsCmd(), newAdmissionCertsCmd())
	return cmd
}

func newAdmissionServeCmd() *cobra.Command {
	var rf remoteFlags
	var opts admission.Options
	var so admission.ServeOptions
	var kubeconfig string
	var ef eventFlags
	var noCache bool
	cmd := &cobra.Command{
		Use:   "serve --policy FILE --tls-cert FILE --tls-key FILE",
		Short: "Serve /validate, /mutate, /healthz, /readyz and /metrics over TLS",
		Long: `Serve answers the API server's AdmissionReviews. Each decision is one JSON
event on standard output (or --events FILE); logs go to standard error.
The policy and the TLS certificate are re-read when their files change; a
policy that does not load keeps the one before, and /readyz and the log
say why. A review that cannot be decided within --timeout is denied with
"registry unreachable".`,
		Example: `  modelattest admission serve --policy /etc/modelattest/policy.yaml \
    --tls-cert /tls/tls.crt --tls-key /tls/tls.key --mutate`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.PolicyFile == "" {
				return usageError{fmt.Errorf("admission serve needs --policy FILE")}
			}
			if so.CertFile == "" || so.KeyFile == "" {
				return usageError{fmt.Errorf("admission serve needs --tls-cert and --tls-key (the API server calls webhooks over HTTPS only)")}
			}
			ro, err := rf.options(cmd.InOrStdin())
			if err != nil {
				return err
			}
			opts.Remote = ro
			if noCache {
				opts.CacheTTL, opts.TagTTL = -1, -1
			}
			if opts.Kube, err = admission.KubeConfig(kubeconfig); err != nil {
				return err
			}
			if err := ef.open(cmd, ""); err != nil {
				return err
			}
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), eventFlagsFlush)
				defer cancel()
				_ = ef.sink.Close(ctx)
			}()
			opts.Events, opts.Version = ef.sink, version
			opts.Log = slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), nil))
			w, err := admission.New(cmd.Context(), opts)
			if err != nil {
				return err
			}
			so.Listening = func(a net.Addr) { opts.Log.Info("listening", "address", a.String()) }
			return w.ListenAndServeTLS(cmd.Context(), so)
		},
	}
	f := cmd.Flags()
	f.StringVar(&so.Address, "address", ":8443", "HOST:PORT to listen on")
	f.StringVar(&so.CertFile, "tls-cert", "", "serving certificate (PEM), reloaded when it changes")
	f.StringVar(&so.KeyFile, "tls-key", "", "serving key (PEM), reloaded when it changes")
	f.StringVar(&opts.PolicyFile, "policy", "", "policy file with an admission section, reloaded when it changes")
	f.BoolVar(&opts.Mutate, "mutate", false, "a mutating webhook pins tags to digests: refuse in-scope references without a digest")
	f.DurationVar(&opts.Timeout, "timeout", 8*time.Second, "budget of one review; past it the answer is a deny (registry unreachable)")
	f.DurationVar(&opts.CacheTTL, "cache-ttl", 5*time.Minute, "longest reuse of a verified decision (never past the evidence's validity)")
	f.DurationVar(&opts.TagTTL, "tag-ttl", 30*time.Second, "reuse of a tag's digest and of a failed decision")
	f.BoolVar(&noCache, "no-cache", false, "verify every review against the registry")
	f.DurationVar(&opts.ReloadInterval, "reload-interval", 5*time.Second, "how often the policy file is checked for changes")
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig to read pull secrets with (default: the in-cluster service account)")
	rf.add(f)
	ef.add(f)
	// A webhook's decisions go to standard output unless told otherwise.
	ef.cfg.File = "-"
	f.Lookup("events").DefValue = "-"
	return cmd
}

func newAdmissionManifestsCmd() *cobra.Command {
	var o admission.ManifestOptions
	var policy, caFile string
	cmd := &cobra.Command{
		Use:   "manifests --policy FILE",
		Short: "Write the webhook configurations, with CEL match conditions generated from the policy's scope",
		Example: `  modelattest admission manifests --policy policy.yaml --mutate --ca-bundle ca.crt | kubectl apply -f -
  modelattest admission manifests --policy policy.yaml --cert-manager modelattest-system/modelattest-admission`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if policy == "" {
				return usageError{fmt.Errorf("admission manifests needs --policy FILE")}
			}
			p, err := admission.LoadPolicy(cmd.Context(), policy)
			if err != nil {
				return err
			}
			if caFile != "" {
				if o.CABundle, err = os.ReadFile(caFile); err != nil {
					return err
				}
			}
			if o.URL != "" && !strings.HasPrefix(o.URL, "https://") {
				return usageError{fmt.Errorf("--url %q: the API server calls webhooks over https:// only", o.URL)}
			}
			return admission.WriteManifests(cmd.OutOrStdout(), p, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&policy, "policy", "", "policy file whose admission scope becomes the match conditions")
	f.StringVar(&o.Name, "name", "modelattest-admission", "name of the webhook configurations")
	f.StringVar(&o.Namespace, "namespace", "modelattest-system", "namespace of the webhook (never sent to it)")
	f.StringVar(&o.Service, "service", "modelattest-admission", "Service of the webhook")
	f.StringVar(&o.URL, "url", "", "https://HOST:PORT of a webhook outside the cluster, instead of the Service")
	f.StringVar(&caFile, "ca-bundle", "", "PEM CA of the serving certificate (see admission certs)")
	f.StringVar(&o.CertManager, "cert-manager", "", "NAMESPACE/CERTIFICATE: let cert-manager inject the CA bundle")
	f.BoolVar(&o.Mutate, "mutate", false, "also write the mutating configuration that pins digests")
	return cmd
}

func newAdmissionCertsCmd() *cobra.Command {
	var o admission.CertOptions
	var out, patch string
	var ips []string
	cmd := &cobra.Command{
		Use:   "certs --out DIR",
		Short: "Write a CA and a serving certificate for the webhook, and patch the CA bundle into manifests",
		Long: `Certs writes ca.crt, tls.crt and tls.key (mode 0600) into DIR. With --patch
FILE it sets the caBundle of every webhook configuration in FILE. The CA's
key is not kept: rotate by running certs again. cert-manager is the
alternative (see docs/ADMISSION.md).`,
		Example: `  modelattest admission certs --out ./tls --patch webhooks.yaml
  kubectl -n modelattest-system create secret tls modelattest-admission-tls --cert tls/tls.crt --key tls/tls.key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageError{fmt.Errorf("admission certs needs --out DIR")}
			}
			for _, s := range ips {
				ip := net.ParseIP(s)
				if ip == nil {
					return usageError{fmt.Errorf("--ip %q is not an IP address", s)}
				}
				o.IPs = append(o.IPs, ip)
			}
			var manifests []byte
			if patch != "" {
				var err error
				if manifests, err = os.ReadFile(patch); err != nil {
					return err
				}
			}
			c, err := admission.GenerateCerts(o)
			if err != nil {
				return err
			}
			if patch != "" {
				if manifests, err = admission.PatchCABundle(manifests, c.CA); err != nil {
					return fmt.Errorf("%s: %w", patch, err)
				}
			}
			if err := os.MkdirAll(out, 0o700); err != nil {
				return err
			}
			for name, b := range map[string][]byte{"ca.crt": c.CA, "tls.crt": c.Cert, "tls.key": c.Key} {
				if err := writeFileAtomic(filepath.Join(out, name), b, 0o600); err != nil {
					return err
				}
			}
			if patch != "" {
				if err := writeFileAtomic(patch, manifests, 0o644); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Wrote %s, %s, %s\n", filepath.Join(out, "ca.crt"), filepath.Join(out, "tls.crt"), filepath.Join(out, "tls.key"))
			if patch != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "Patched the caBundle in %s\n", patch)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "folder for ca.crt, tls.crt and tls.key")
	f.StringVar(&o.Service, "service", "modelattest-admission", "Service of the webhook")
	f.StringVar(&o.Namespace, "namespace", "modelattest-system", "namespace of the webhook")
	f.StringSliceVar(&o.DNSNames, "dns", nil, "extra DNS names for the certificate")
	f.StringSliceVar(&ips, "ip", nil, "IP addresses for the certificate (a webhook outside the cluster)")
	f.DurationVar(&o.Validity, "validity", 365*24*time.Hour, "validity of the certificates")
	f.StringVar(&patch, "patch", "", "manifest file whose webhook configurations get the new caBundle")
	return cmd
}

// writeFileAtomic writes b to a temporary file beside name and renames it
// into place, so a reader (the webhook's reloader) never sees half a file.
func writeFileAtomic(name string, b []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, strings.NewReader(string(b))); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}
