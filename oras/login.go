package oras

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

// LoginResult says where Login stored, or Logout removed, credentials.
type LoginResult struct {
	// Registry is the host logged in to (or out of).
	Registry string `json:"registry"`
	// Store names where the credentials are kept: "credential helper
	// docker-credential-NAME" (credHelpers for this host, or credsStore),
	// or "config file PATH" (base64, unencrypted, as docker writes it).
	Store string `json:"store"`
	// ConfigFile is the Docker config file consulted.
	ConfigFile string `json:"configFile"`
}

// Login checks opts.Username and opts.Password against the registry at
// host (a request to /v2/ with them) and stores them as docker login and
// oras login do: through the credential helper the Docker config names for
// host (credHelpers), else its credsStore, else the platform's keychain
// helper when one is installed, else in the config file itself. docker,
// oras, crane and every modelattest command read them from there. A
// missing config file is created.
func Login(ctx context.Context, host string, opts RemoteOptions) (LoginResult, error) {
	reg := registry.Reference{Registry: host}
	if err := reg.ValidateRegistry(); err != nil || strings.ContainsAny(host, "/@") {
		return LoginResult{}, fmt.Errorf("registry %q: want a host name, such as registry.example or localhost:5000", host)
	}
	if opts.Username == "" && opts.Password == "" {
		return LoginResult{}, errors.New("login needs a user name and a password (or an identity token)")
	}
	file := configFile(opts.RegistryConfig)
	store, err := credentials.NewStore(file, credentials.StoreOptions{DetectDefaultNativeStore: true, AllowPlaintextPut: true})
	if err != nil {
		return LoginResult{}, fmt.Errorf("%w %s: %w", ErrRegistryConfig, file, err)
	}
	client, err := newAuthClient(reg.Host(), opts)
	if err != nil {
		return LoginResult{}, err
	}
	client.Cache = nil
	r := &remote.Registry{RepositoryOptions: remote.RepositoryOptions{Client: client, PlainHTTP: opts.PlainHTTP,
		Reference: registry.Reference{Registry: reg.Registry}}}
	cred := auth.Credential{Username: opts.Username, Password: opts.Password}
	if opts.Username == "" {
		cred = auth.Credential{RefreshToken: opts.Password} // an identity token, as docker login takes it
	}
	if err := credentials.Login(ctx, store, r, cred); err != nil {
		var ec *errcode.ErrorResponse
		if errors.As(err, &ec) && (ec.StatusCode == http.StatusUnauthorized || ec.StatusCode == http.StatusForbidden) {
			return LoginResult{}, &AuthError{Registry: reg.Registry, StatusCode: ec.StatusCode, Err: ec}
		}
		return LoginResult{}, err
	}
	return LoginResult{Registry: reg.Registry, Store: storeName(file, reg.Registry), ConfigFile: file}, nil
}

// Logout removes the credentials stored for host, from wherever Login
// would have put them. Removing credentials that are not there is not an
// error.
func Logout(ctx context.Context, host string, opts RemoteOptions) (LoginResult, error) {
	file := configFile(opts.RegistryConfig)
	if opts.RegistryConfig != "" {
		if _, err := os.Stat(file); err != nil {
			return LoginResult{}, fmt.Errorf("%w: %w", ErrRegistryConfig, err)
		}
	}
	store, err := credentials.NewStore(file, credentials.StoreOptions{DetectDefaultNativeStore: true})
	if err != nil {
		return LoginResult{}, fmt.Errorf("%w %s: %w", ErrRegistryConfig, file, err)
	}
	if err := credentials.Logout(ctx, store, host); err != nil {
		return LoginResult{}, err
	}
	return LoginResult{Registry: host, Store: storeName(file, host), ConfigFile: file}, nil
}

// configFile is the Docker config file: the one named, else
// $DOCKER_CONFIG/config.json, else ~/.docker/config.json.
func configFile(named string) string {
	if named != "" {
		return named
	}
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return filepath.Join(d, "config.json")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(".docker", "config.json")
	}
	return filepath.Join(home, ".docker", "config.json")
}

// storeName reads the config file again to name where host's credentials
// go: oras-go's store does not say which it used.
func storeName(file, host string) string {
	var cfg struct {
		CredsStore  string            `json:"credsStore"`
		CredHelpers map[string]string `json:"credHelpers"`
	}
	if b, err := os.ReadFile(file); err == nil {
		_ = json.Unmarshal(b, &cfg)
	}
	if h := cfg.CredHelpers[credentials.ServerAddressFromRegistry(host)]; h != "" {
		return "credential helper docker-credential-" + h
	}
	if cfg.CredsStore != "" {
		return "credential helper docker-credential-" + cfg.CredsStore
	}
	return "config file " + file
}
