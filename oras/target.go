package oras

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"time"

	orasgo "oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content/oci"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/retry"
)

// ReferrersMode forces how referrers are listed and indexed.
type ReferrersMode string

const (
	// ReferrersAuto detects the Referrers API at run time.
	ReferrersAuto ReferrersMode = ""
	// ReferrersAPI uses the OCI 1.1 Referrers API only.
	ReferrersAPI ReferrersMode = "v1.1-referrers-api"
	// ReferrersTag uses the sha256-<hex> tag schema only.
	ReferrersTag ReferrersMode = "v1.1-referrers-tag"
)

// RemoteOptions says how to reach a registry. The zero value uses HTTPS,
// the Docker config's credentials and helpers, and retries on 429 and 5xx.
type RemoteOptions struct {
	// Username and Password, when set, are used instead of the Docker config.
	Username, Password string
	// RegistryConfig is a Docker config file to read credentials from; empty
	// means the default (~/.docker/config.json or $DOCKER_CONFIG).
	RegistryConfig string
	// PlainHTTP talks HTTP instead of HTTPS.
	PlainHTTP bool
	// Insecure skips TLS certificate verification.
	Insecure bool
	// CAFile adds the PEM certificates in this file to the trusted roots.
	CAFile string
	// DistributionSpec forces the Referrers API or the tag schema.
	DistributionSpec ReferrersMode
	// HTTPClient replaces the transport entirely (tests, proxies). Retries
	// are still added around it.
	HTTPClient *http.Client
	// UserAgent is sent with every request.
	UserAgent string
	// RetryPolicy decides retries on 429, 5xx and network errors (nil:
	// oras-go's default, five retries with exponential backoff from 200 ms,
	// honouring Retry-After).
	RetryPolicy retry.Policy
	// Credential, when set, is asked first for a registry host's
	// credentials (admission: a workload's pull secrets); when it has none
	// (false), Username/Password or the Docker config answer as usual
	// (nil: not asked).
	Credential func(ctx context.Context, hostport string) (auth.Credential, bool)
}

// hostsWithoutReferrersAPI are registries known to lack the Referrers API,
// or to answer it in ways oras-go treats as hard errors (GHCR: 303 to a
// rate-limited URL); they use the tag schema up front.
var hostsWithoutReferrersAPI = map[string]bool{"ghcr.io": true}

// NewRepository connects to the repository named by ref (host/name, tag or
// digest ignored).
func NewRepository(ctx context.Context, ref string, opts RemoteOptions) (*remote.Repository, error) {
	r, err := registry.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("reference %q: %w", ref, err)
	}
	repo := &remote.Repository{
		Reference:       registry.Reference{Registry: r.Registry, Repository: r.Repository},
		PlainHTTP:       opts.PlainHTTP,
		SkipReferrersGC: true, // GHCR refuses DELETE, immutable tags refuse overwrites of old indexes
		// A hostile registry may page a referrers listing forever.
		ReferrerListMaxPages: 64,
		TagListMaxPages:      64,
	}
	client, err := newAuthClient(r.Host(), opts)
	if err != nil {
		return nil, err
	}
	anonymous := new(atomic.Bool)
	switch {
	case opts.Username != "" || opts.Password != "":
		client.Credential = auth.StaticCredential(r.Host(), auth.Credential{Username: opts.Username, Password: opts.Password})
	default:
		store, err := credentialStore(opts.RegistryConfig)
		if err != nil {
			return nil, err
		}
		found := credentials.Credential(store)
		client.Credential = func(ctx context.Context, host string) (auth.Credential, error) {
			c, err := found(ctx, host)
			if err == nil && c == auth.EmptyCredential {
				anonymous.Store(true) // an AuthError will say to log in
			}
			return c, err
		}
	}
	if first := opts.Credential; first != nil {
		then := client.Credential
		client.Credential = func(ctx context.Context, host string) (auth.Credential, error) {
			if c, ok := first(ctx, host); ok {
				return c, nil
			}
			return then(ctx, host)
		}
	}
	repo.Client = &explainingClient{inner: client, registry: r.Registry, repository: r.Repository, anonymous: anonymous}
	switch opts.DistributionSpec {
	case ReferrersAPI:
		_ = repo.SetReferrersCapability(true)
	case ReferrersTag:
		_ = repo.SetReferrersCapability(false)
	case ReferrersAuto:
		if hostsWithoutReferrersAPI[r.Registry] {
			_ = repo.SetReferrersCapability(false)
		}
	default:
		return nil, fmt.Errorf("distribution spec %q: want %s or %s", opts.DistributionSpec, ReferrersAPI, ReferrersTag)
	}
	return repo, nil
}

// NewTransport is the HTTP transport of registry requests made with opts:
// TLS verification (off only with Insecure), the CA file added to the
// system pool, dial timeouts and connection reuse. Callers that need their
// own client (admission, audit) start from it so that --insecure and
// --ca-file mean the same everywhere; a CA file that cannot be read or holds
// no certificate is an error, never an empty pool.
func NewTransport(opts RemoteOptions) (*http.Transport, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.MaxIdleConnsPerHost = 16
	tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: opts.Insecure} //nolint:gosec // the user asked for --insecure
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca file %s: no PEM certificate found", opts.CAFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return tr, nil
}

// newAuthClient is the HTTP client of every registry request to host:
// transport (TLS, CA file), retries, user agent and a token cache; the
// caller sets its credentials.
func newAuthClient(host string, opts RemoteOptions) (*auth.Client, error) {
	base := opts.HTTPClient
	if base == nil {
		tr, err := NewTransport(opts)
		if err != nil {
			return nil, err
		}
		base = &http.Client{Transport: tr}
	}
	hc := *base
	rt := retry.NewTransport(lengthBlind{base.Transport})
	if opts.RetryPolicy != nil {
		rt.Policy = func() retry.Policy { return opts.RetryPolicy }
	}
	hc.Transport = rt
	client := &auth.Client{Client: &hc, Cache: auth.NewCache()}
	if opts.UserAgent != "" {
		client.SetUserAgent(opts.UserAgent)
	} else {
		client.SetUserAgent("modelattest")
	}
	if isLoopback(host) {
		// A registry on this machine may have its token service on this
		// machine too; oras-go blocks loopback realms by default.
		client.BlockedRealmPrefixes = withoutLoopback(auth.DefaultBlockedRealmPrefixes())
	}
	return client, nil
}

// credentialStore opens the Docker config file (the default one when file
// is empty) with its credsStore and credHelpers. A file named but missing is
// an error: an empty configuration would hide a typo.
func credentialStore(file string) (credentials.Store, error) {
	sopts := credentials.StoreOptions{DetectDefaultNativeStore: true}
	if file == "" {
		s, err := credentials.NewStoreFromDocker(sopts)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrRegistryConfig, err)
		}
		return s, nil
	}
	if _, err := os.Stat(file); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRegistryConfig, err)
	}
	s, err := credentials.NewStore(file, sopts)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrRegistryConfig, file, err)
	}
	return s, nil
}

func isLoopback(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && a.IsLoopback()
}

func withoutLoopback(ps []netip.Prefix) []netip.Prefix {
	out := ps[:0]
	for _, p := range ps {
		if !p.Addr().IsLoopback() {
			out = append(out, p)
		}
	}
	return out
}

// Target is what push, pull, copy and discover work on: a remote
// repository or an OCI layout, with the reference inside it.
type Target struct {
	orasgo.GraphTarget
	// Reference is the tag or digest given, or "" for none.
	Reference string
	// Name describes the target for messages: the repository or layout path.
	Name string

	policyName string // see PolicyName
}

// OpenLayout opens (creating it if needed) an OCI image layout. ref is
// "DIR", "DIR:TAG" or "DIR@DIGEST".
func OpenLayout(ref string) (*Target, error) {
	dir, reference := splitLayoutRef(ref)
	store, err := oci.New(dir)
	if err != nil {
		return nil, fmt.Errorf("oci layout %s: %w", dir, err)
	}
	name, err := CanonicalLayoutPath(dir)
	if err != nil {
		return nil, fmt.Errorf("oci layout %s: %w", dir, err)
	}
	return &Target{GraphTarget: store, Reference: reference, Name: dir, policyName: name}, nil
}

func splitLayoutRef(ref string) (dir, reference string) {
	if i := strings.LastIndex(ref, "@"); i > 0 {
		return ref[:i], ref[i+1:]
	}
	// A tag follows the last colon, unless that colon belongs to a Windows
	// drive or a path component.
	if i := strings.LastIndex(ref, ":"); i > 1 && !strings.ContainsAny(ref[i+1:], `/\`) {
		return ref[:i], ref[i+1:]
	}
	return ref, ""
}

// OpenRemote connects to a remote repository named by "host/repo[:tag|@digest]".
func OpenRemote(ctx context.Context, ref string, opts RemoteOptions) (*Target, error) {
	r, err := registry.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("reference %q: %w", ref, err)
	}
	repo, err := NewRepository(ctx, ref, opts)
	if err != nil {
		return nil, err
	}
	name, err := CanonicalRepository(ref, opts.PlainHTTP)
	if err != nil {
		return nil, err
	}
	return &Target{GraphTarget: repo, Reference: r.Reference, Name: r.Registry + "/" + r.Repository, policyName: name}, nil
}

// Open opens ref as an OCI layout when layout is true, a remote repository
// otherwise.
func Open(ctx context.Context, ref string, layout bool, opts RemoteOptions) (*Target, error) {
	if layout {
		return OpenLayout(ref)
	}
	return OpenRemote(ctx, ref, opts)
}

// String names the target and its reference.
func (t *Target) String() string {
	if t.Reference == "" {
		return t.Name
	}
	if strings.Contains(t.Reference, ":") {
		return t.Name + "@" + t.Reference
	}
	return t.Name + ":" + t.Reference
}
