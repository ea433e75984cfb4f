package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/modelattest/modelattest/registry"
)

func newRegistryCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "registry", Short: "Run an embedded OCI 1.1 registry"}
	cmd.AddCommand(newRegistryServeCmd())
	return cmd
}

func newRegistryServeCmd() *cobra.Command {
	var cfg registry.Config
	var logLevel string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve an OCI 1.1 registry (distribution + Referrers API) from a directory",
		Example: `  modelattest registry serve --address 127.0.0.1:5000 --root ./registry-data
  modelattest registry serve --htpasswd ./htpasswd --tls-cert cert.pem --tls-key key.pem`,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{annotationStopsOnSignal: "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
				return usageError{fmt.Errorf("--log-level: %w", err)}
			}
			if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
				return usageError{fmt.Errorf("--tls-cert and --tls-key go together")}
			}
			cfg.Logger = slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: lvl}))
			s, err := registry.Start(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			scheme := "http"
			if cfg.TLSCert != "" {
				scheme = "https"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Serving an OCI 1.1 registry at %s://%s (root %s)\n", scheme, s.Addr(), cfg.RootDir)
			done := make(chan error, 1)
			go func() { done <- s.Wait() }()
			select {
			case err = <-done:
			case <-cmd.Context().Done():
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if cerr := s.Close(ctx); err == nil {
				err = cerr
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Addr, "address", "127.0.0.1:5000", "HOST:PORT to listen on")
	f.StringVar(&cfg.RootDir, "root", defaultRoot(), "directory to store everything in")
	f.StringVar(&cfg.HtpasswdFile, "htpasswd", "", "require basic auth from the bcrypt users in this htpasswd file")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "serve HTTPS with this certificate (PEM)")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "private key of --tls-cert (PEM)")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

func defaultRoot() string {
	if d, err := os.UserCacheDir(); err == nil {
		return d + "/modelattest/registry"
	}
	return "./registry-data"
}
