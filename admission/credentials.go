package admission

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/modelattest/modelattest/oras"
)

// registryClient is the one HTTP client every review shares, so
// connections to a registry are reused. It honours the TLS settings of
// RemoteOptions as oras.NewRepository does.
func registryClient(o oras.RemoteOptions) (*http.Client, error) {
	tr, err := oras.NewTransport(o)
	if err != nil {
		return nil, err
	}
	// A review has a budget of seconds: fail a dead registry's dial fast,
	// and keep more connections for concurrent reviews.
	tr.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.MaxIdleConnsPerHost = 32
	return &http.Client{Transport: tr}, nil
}

// pullCreds are the registry credentials of one workload: its
// imagePullSecrets, then those of its service account. They are read from
// the API only when the registry must be asked (a cache miss), so a cached
// decision costs no API call. Secrets are never logged or put in an event.
type pullCreds struct {
	w         *Webhook
	namespace string
	secrets   []string
	sa        string

	once  sync.Once
	hosts map[string]auth.Credential
	err   error
}

func (w *Webhook) pullCredentials(_ context.Context, namespace string, wl *workload) *pullCreds {
	if w.kube == nil || namespace == "" {
		return nil
	}
	sa := wl.ServiceAccount
	if sa == "" {
		sa = "default"
	}
	return &pullCreds{w: w, namespace: namespace, secrets: wl.PullSecrets, sa: sa}
}

func (c *pullCreds) get(ctx context.Context, hostport string) (auth.Credential, bool) {
	c.once.Do(func() { c.hosts, c.err = c.load(ctx) })
	if c.err != nil {
		c.w.log.Warn("pull secrets not read; using the webhook's own credentials", "namespace", c.namespace, "error", c.err)
	}
	cred, ok := c.hosts[registryKey(hostport)]
	return cred, ok
}

func (c *pullCreds) load(ctx context.Context) (map[string]auth.Credential, error) {
	names := append([]string(nil), c.secrets...)
	var sa corev1.ServiceAccount
	if err := c.w.kube.get(ctx, "/api/v1/namespaces/"+url.PathEscape(c.namespace)+"/serviceaccounts/"+url.PathEscape(c.sa), &sa); err != nil {
		c.w.log.Warn("service account not read", "namespace", c.namespace, "serviceAccount", c.sa, "error", err)
	} else {
		for _, s := range sa.ImagePullSecrets {
			names = append(names, s.Name)
		}
	}
	hosts := map[string]auth.Credential{}
	for _, name := range names {
		var s corev1.Secret
		if err := c.w.kube.get(ctx, "/api/v1/namespaces/"+url.PathEscape(c.namespace)+"/secrets/"+url.PathEscape(name), &s); err != nil {
			c.w.log.Warn("pull secret not read", "namespace", c.namespace, "secret", name, "error", err)
			continue
		}
		auths, err := dockerAuths(&s)
		if err != nil {
			c.w.log.Warn("pull secret not usable", "namespace", c.namespace, "secret", name, "error", err)
			continue
		}
		for h, cred := range auths {
			if _, ok := hosts[h]; !ok { // the first secret naming a host wins
				hosts[h] = cred
			}
		}
	}
	return hosts, nil
}

// dockerAuths reads a kubernetes.io/dockerconfigjson or dockercfg secret
// into credentials by registry host.
func dockerAuths(s *corev1.Secret) (map[string]auth.Credential, error) {
	var entries map[string]struct {
		Auth          string `json:"auth"`
		Username      string `json:"username"`
		Password      string `json:"password"`
		IdentityToken string `json:"identitytoken"`
		RegistryToken string `json:"registrytoken"`
	}
	switch s.Type {
	case corev1.SecretTypeDockerConfigJson:
		var cfg struct {
			Auths json.RawMessage `json:"auths"`
		}
		if err := json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &cfg); err != nil {
			return nil, fmt.Errorf("%s: not a Docker config", corev1.DockerConfigJsonKey)
		}
		if err := json.Unmarshal(cfg.Auths, &entries); err != nil {
			return nil, fmt.Errorf("%s: auths unreadable", corev1.DockerConfigJsonKey)
		}
	case corev1.SecretTypeDockercfg:
		if err := json.Unmarshal(s.Data[corev1.DockerConfigKey], &entries); err != nil {
			return nil, fmt.Errorf("%s: unreadable", corev1.DockerConfigKey)
		}
	default:
		return nil, fmt.Errorf("type %s is not a pull secret", s.Type)
	}
	out := map[string]auth.Credential{}
	for key, e := range entries {
		c := auth.Credential{Username: e.Username, Password: e.Password, RefreshToken: e.IdentityToken, AccessToken: e.RegistryToken}
		if e.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(e.Auth)
			if err != nil {
				return nil, fmt.Errorf("auth of an entry is not base64") // never the value
			}
			u, p, ok := strings.Cut(string(raw), ":")
			if !ok {
				return nil, fmt.Errorf("auth of an entry is not user:password")
			}
			c.Username, c.Password = u, p
		}
		out[registryKey(key)] = c
	}
	return out, nil
}

// registryKey reduces a Docker config key ("https://index.docker.io/v1/",
// "registry.example:5000/some/path") or a host:port to the canonical host
// the credentials belong to.
func registryKey(k string) string {
	if i := strings.Index(k, "://"); i >= 0 {
		k = k[i+3:]
	}
	k, _, _ = strings.Cut(k, "/")
	k = strings.TrimSuffix(strings.ToLower(k), ":443")
	switch k {
	case "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		k = "docker.io"
	}
	return k
}

// kubeClient reads a few objects from the API server with the webhook's
// own service account: client-go's authenticated transport, without the
// typed clientset (which would add tens of MB to the CLI).
type kubeClient struct {
	host string
	hc   *http.Client
}

func newKubeClient(cfg *rest.Config) (*kubeClient, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	hc.Timeout = 5 * time.Second
	host := strings.TrimSuffix(cfg.Host, "/")
	if !strings.Contains(host, "://") {
		host = "https://" + host
	}
	return &kubeClient{host: host + strings.TrimSuffix(cfg.APIPath, "/"), hc: hc}, nil
}

func (k *kubeClient) get(ctx context.Context, path string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.host+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var st struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(body, &st)
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, st.Message)
	}
	return json.Unmarshal(body, into)
}

// exempt returns the policy exemption the object (or else its namespace)
// names, or why the one it names does not apply ("" when none is named).
func (w *Webhook) exempt(ctx context.Context, pol *loadedPolicy, namespace string, wl *workload) (*Exemption, string) {
	name := wl.Annotations[ExemptionAnnotation]
	if name == "" && w.kube != nil && len(pol.Admission.Exemptions) > 0 && namespace != "" {
		var ns corev1.Namespace
		if err := w.kube.get(ctx, "/api/v1/namespaces/"+url.PathEscape(namespace), &ns); err == nil {
			name = ns.Annotations[ExemptionAnnotation]
		} else {
			w.log.Warn("namespace not read for exemptions", "namespace", namespace, "error", err)
		}
	}
	if name == "" {
		return nil, ""
	}
	e, err := pol.exemption(name, namespace, time.Now())
	if err != nil {
		return nil, err.Error()
	}
	return e, ""
}

// KubeConfig is how the webhook reaches the API server: the kubeconfig
// file when one is given, else the in-cluster service account, else nil
// (no pull secrets, no namespace exemptions).
func KubeConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if errors.Is(err, rest.ErrNotInCluster) {
		return nil, nil
	}
	return cfg, err
}
