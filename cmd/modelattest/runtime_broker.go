package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/modelattest/modelattest/encryption"
	"github.com/modelattest/modelattest/events"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
	tee "github.com/modelattest/modelattest/runtime"
)

func newRuntimeBrokerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "The relying party that releases encrypted models' keys to attested confidential VMs",
	}
	cmd.AddCommand(newRuntimeBrokerServeCmd())
	return cmd
}

func newRuntimeBrokerServeCmd() *cobra.Command {
	var rf remoteFlags
	var ef eventFlags
	var bo tee.BrokerOptions
	var so tee.BrokerServeOptions
	var policy, keyFile, rootsFile, crlFile string
	var measurements []string
	cmd := &cobra.Command{
		Use:   "serve --policy FILE --key PRIV.pem",
		Short: "Serve POST /v1/nonce and POST /v1/key: layer keys released only for evidence that passes",
		Long: `Serve is the relying party of docs/RUNTIME.md. POST /v1/nonce gives a fresh
nonce, single use, expiring after --nonce-ttl. POST /v1/key takes evidence
whose REPORT_DATA binds that nonce, the policy digest, the model and the
SHA-256 of an ephemeral P-256 key; the broker checks everything runtime
verify checks (TEE chain, TCB, debug, measurement, binding, the model
re-verified in its registry against --policy), then unwraps the model's
layer keys with --key and returns them wrapped to the ephemeral key. A
refusal is HTTP 403 naming the failed check.

Each key request is one decision event (standard output unless --events
says otherwise); logs go to standard error. Neither ever holds a key.`,
		Example: `  modelattest runtime broker serve --address :8444 --policy policy.yaml --key broker.key
  modelattest runtime broker serve --policy policy.yaml --key broker.key --tee-roots ark.pem --tls-cert tls.crt --tls-key tls.key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if policy == "" || keyFile == "" {
				return usageError{fmt.Errorf("runtime broker serve needs --policy FILE and --key PRIV.pem")}
			}
			if (so.CertFile == "") != (so.KeyFile == "") {
				return usageError{fmt.Errorf("--tls-cert and --tls-key go together")}
			}
			ro, err := rf.options(cmd.InOrStdin())
			if err != nil {
				return err
			}
			priv, err := os.ReadFile(keyFile)
			if err != nil {
				return fmt.Errorf("--key: %w", err)
			}
			// An empty manifest unwraps nothing but reads the key: a key
			// that does not load stops the broker at start, not at the
			// first request.
			if _, err := encryption.UnwrapKeys(cmd.Context(), &ocispec.Manifest{}, priv); err != nil {
				return fmt.Errorf("--key %s: %w", keyFile, err)
			}
			vo, pol, err := runtimeVerifyOptions(cmd, policy, rootsFile, crlFile, measurements, nil)
			if err != nil {
				return err
			}
			if err := ef.open(cmd, ""); err != nil {
				return err
			}
			defer ef.close(cmd)
			bo.Verify = vo
			bo.Models = tee.RegistryModels(pol, ro)
			bo.Keys = func(ctx context.Context, _ ocispec.Descriptor, m *ocispec.Manifest) (map[digest.Digest][]byte, error) {
				keys, err := encryption.UnwrapKeys(ctx, m, priv)
				if err != nil {
					return nil, err
				}
				out := make(map[digest.Digest][]byte, len(keys))
				for d, k := range keys {
					out[d] = k
				}
				return out, nil
			}
			bo.Events, bo.Version = ef.sink, version
			bo.Log = slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), nil))
			b, err := tee.NewBroker(bo)
			if err != nil {
				return err
			}
			so.Listening = func(a net.Addr) { bo.Log.Info("listening", "address", a.String(), "policy", pol.Digest.String()) }
			return b.ListenAndServe(cmd.Context(), so)
		},
	}
	f := cmd.Flags()
	f.StringVar(&so.Address, "address", ":8444", "HOST:PORT to listen on")
	f.StringVar(&so.CertFile, "tls-cert", "", "serve HTTPS with this certificate (PEM); default plain HTTP")
	f.StringVar(&so.KeyFile, "tls-key", "", "key of --tls-cert (PEM)")
	f.StringVar(&policy, "policy", "", "policy file with a runtime: section (the models' rules and the TEE requirements)")
	f.StringVar(&keyFile, "key", "", "private key (PEM) the models' layer keys are wrapped to (push --encrypt-recipient jwe:PUB.pem)")
	f.StringVar(&rootsFile, "tee-roots", "", "PEM file of trusted TEE roots; overrides the policy's runtime.roots")
	f.StringArrayVar(&measurements, "measurement", nil, "accepted launch measurement, hex (repeatable); replaces the policy's runtime.measurements")
	f.StringVar(&crlFile, "crl", "", "AMD CRL file (DER or PEM); without it revocation is not checked offline")
	f.DurationVar(&bo.NonceTTL, "nonce-ttl", tee.DefaultNonceTTL, "how long a nonce may be presented")
	f.IntVar(&bo.MaxNonces, "max-nonces", tee.DefaultMaxNonces, "nonces held at once (used or not, until they expire); past it /v1/nonce answers 503")
	f.DurationVar(&bo.Timeout, "timeout", tee.DefaultKeyTimeout, "budget of one key request, registry reads included")
	rf.add(f)
	ef.add(f)
	// A server's decisions go to standard output unless told otherwise.
	ef.cfg.File = "-"
	f.Lookup("events").DefValue = "-"
	return cmd
}

// brokerClient makes the client of --broker URL, trusting --broker-ca-file
// besides the system's roots for an https:// broker.
func brokerClient(url, caFile string) (*tee.BrokerClient, error) {
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		return nil, usageError{fmt.Errorf("--broker %q: want an http:// or https:// URL", url)}
	}
	c := &tee.BrokerClient{URL: url}
	if caFile == "" {
		return c, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--broker-ca-file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--broker-ca-file %s: no PEM certificate", caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	c.HTTP = &http.Client{Transport: tr, Timeout: 90 * time.Second}
	return c, nil
}

// runtimeBrokerPull is runtime load with --broker: the verified pull asks
// the broker for the layer keys once the model has passed and before any
// file is fetched, and decrypts while pulling. Nothing lands unless the
// policy passes, the broker releases the keys, and every layer decrypts
// and checks. It returns the evidence sent to the broker.
func runtimeBrokerPull(cmd *cobra.Command, t *oras.Target, desc ocispec.Descriptor, out string, pol *referrers.Policy,
	ev *eventFlags, ref string, bc *tee.BrokerClient, p tee.Provider) (*tee.Evidence, error) {
	decided := false
	// The pull reads its keys after OnVerified returns: the map is filled
	// there, once the model has passed, and before a byte is fetched.
	keys := encryption.Keys{}
	var evidence *tee.Evidence
	_, _, err := referrers.PullVerified(cmd.Context(), t, desc, out, pol, referrers.PullVerifiedOptions{
		Pull: oras.PullOptions{Decrypt: keys},
		OnVerified: func(rep *referrers.Report) error {
			decided = true
			ev.record(events.FacePull, ref, rep.Repository, desc.Digest, rep, nil)
			printReport(cmd.ErrOrStderr(), t, rep)
			if !rep.Passed {
				return fmt.Errorf("%w: %s fails the policy (rule mode %s): no key is asked for it", referrers.ErrPolicyNotSatisfied, desc.Digest, rep.Mode)
			}
			verification, err := json.Marshal(rep)
			if err != nil {
				return err
			}
			rel, err := tee.RequestKeys(cmd.Context(), tee.ReleaseOptions{Broker: bc, Provider: p, Reference: ref,
				ManifestDigest: desc.Digest, PolicyDigest: pol.Digest, Verification: verification})
			if err != nil {
				return err
			}
			evidence = rel.Evidence
			for d, k := range rel.Keys {
				keys[d] = k
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Broker released %d layer keys (request %s)\n", len(rel.Keys), rel.RequestID)
			return nil
		},
	})
	if !decided {
		ev.record(events.FacePull, ref, t.Name, desc.Digest, nil, err)
	}
	return evidence, err
}
