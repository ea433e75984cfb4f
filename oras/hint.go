package oras

import (
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"

	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

// AuthError says that a registry refused a request for want of (valid)
// credentials: a 401 or 403 answer, or basic auth asked for with none to
// give. It wraps the registry's *errcode.ErrorResponse (or
// auth.ErrBasicCredentialNotFound).
type AuthError struct {
	// Registry is the host that refused, Repository the repository asked for.
	Registry, Repository string
	// Anonymous is true when no credentials were given or found for
	// Registry: the fix is to log in, not to change a password.
	Anonymous bool
	// StatusCode is 401 or 403, or 0 when no request was sent.
	StatusCode int
	Err        error
}

func (e *AuthError) Error() string {
	what := "refused access"
	if e.StatusCode == http.StatusForbidden {
		what = "denied access"
	}
	if e.Repository != "" {
		what += " to repository " + e.Repository
	}
	creds := "with the credentials given"
	if e.Anonymous {
		creds = "without credentials (none given or stored for it)"
	}
	return fmt.Sprintf("registry %s %s %s: %v", e.Registry, what, creds, e.Err)
}

func (e *AuthError) Unwrap() error { return e.Err }

// ErrRegistryConfig is returned when the Docker config file named in
// RemoteOptions.RegistryConfig cannot be read.
var ErrRegistryConfig = errors.New("registry config")

// Hint says what to do next about err, as a modelattest command line, or
// "" when it has nothing to add: how to log in when a registry wants
// credentials, which registry and repository refused the ones given, and
// --plain-http when an HTTPS request reached a plain-HTTP registry.
func Hint(err error) string {
	var ae *AuthError
	switch {
	case errors.As(err, &ae) && ae.Anonymous:
		return fmt.Sprintf("log in with `modelattest login %s` (docker login and oras login work too), "+
			"or pass --username with --password-stdin", ae.Registry)
	case errors.As(err, &ae) && ae.StatusCode == http.StatusForbidden:
		return fmt.Sprintf("the account used for %s may not access %s: check its permissions on that repository, or log in as another user",
			ae.Registry, ae.Repository)
	case errors.As(err, &ae):
		return fmt.Sprintf("check the user name and password for %s, or log in again with `modelattest login %s`",
			ae.Registry, ae.Registry)
	case errors.Is(err, http.ErrSchemeMismatch):
		return "the registry speaks plain HTTP: add --plain-http (only for a registry you trust on a network you trust)"
	case errors.Is(err, ErrRegistryConfig):
		return "give an existing Docker config file to --registry-config, or leave it out to use ~/.docker/config.json"
	}
	return ""
}

// explainingClient turns a registry's final 401 or 403 (after the auth
// client has tried the credentials it has) into an *AuthError that names
// the registry and repository and says whether any credentials were used.
type explainingClient struct {
	inner      remote.Client
	registry   string
	repository string
	anonymous  *atomic.Bool
}

func (c *explainingClient) Do(req *http.Request) (*http.Response, error) {
	resp, err := c.inner.Do(req)
	if errors.Is(err, auth.ErrBasicCredentialNotFound) {
		return nil, &AuthError{Registry: c.registry, Repository: c.repository, Anonymous: true, Err: err}
	}
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
		return resp, nil
	}
	defer resp.Body.Close()
	_, rerr := doExpectResp(resp, req)
	var ec *errcode.ErrorResponse
	if !errors.As(rerr, &ec) {
		return nil, rerr
	}
	return nil, &AuthError{Registry: c.registry, Repository: c.repository, Anonymous: c.anonymous.Load(),
		StatusCode: resp.StatusCode, Err: ec}
}
