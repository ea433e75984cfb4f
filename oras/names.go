package oras

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"oras.land/oras-go/v2/content/oci"
	"oras.land/oras-go/v2/registry"
)

// Docker Hub answers under three host names; they are one registry.
const dockerHub = "docker.io"

var dockerHubAliases = map[string]bool{"docker.io": true, "index.docker.io": true, "registry-1.docker.io": true}

// CanonicalHost is the one spelling of a registry host that policies are
// matched against: lower-cased, without a trailing dot, without the default
// port of the scheme in use (443 for HTTPS, 80 for plain HTTP), and with
// Docker Hub's aliases merged into docker.io.
func CanonicalHost(host string, plainHTTP bool) string {
	h, port := splitHost(host)
	if (port == "443" && !plainHTTP) || (port == "80" && plainHTTP) {
		port = ""
	}
	if dockerHubAliases[h] && port == "" {
		h = dockerHub
	}
	return joinHost(h, port)
}

// splitHost lower-cases host and splits off its port (leading zeros
// dropped); the host loses a
// trailing dot, and an IPv6 literal loses its brackets and is written in
// its one shortest form ("[0:0::1]" and "[::1]" are one host).
func splitHost(host string) (h, port string) {
	h = strings.ToLower(host)
	if hh, p, err := net.SplitHostPort(h); err == nil {
		h, port = hh, p
	} else if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	if n, err := strconv.ParseUint(port, 10, 16); err == nil {
		port = strconv.FormatUint(n, 10) // "0443" dials 443
	}
	h = strings.TrimSuffix(h, ".")
	if ip := net.ParseIP(h); ip != nil && strings.Contains(h, ":") {
		h = ip.String()
	}
	return h, port
}

// joinHost writes host and an optional port back, an IPv6 literal always
// in brackets.
func joinHost(h, port string) string {
	if port != "" {
		return net.JoinHostPort(h, port)
	}
	if strings.Contains(h, ":") {
		return "[" + h + "]"
	}
	return h
}

// CanonicalRepository is the canonical name of the repository named by ref
// ("host/name", a tag or digest is ignored): CanonicalHost, and on Docker Hub
// a one-part name is under library/ (docker.io/x is docker.io/library/x).
func CanonicalRepository(ref string, plainHTTP bool) (string, error) {
	r, err := registry.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("reference %q: %w", ref, err)
	}
	host := CanonicalHost(r.Registry, plainHTTP)
	repo := r.Repository
	if host == dockerHub && !strings.Contains(repo, "/") {
		repo = "library/" + repo
	}
	return host + "/" + repo, nil
}

// CanonicalLayoutPath is the canonical name of an OCI layout: its cleaned
// absolute path with symlinks resolved (as far as the path exists).
func CanonicalLayoutPath(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if resolved, err := filepath.EvalSymlinks(abs); err == nil {
		return resolved, nil
	}
	return filepath.Clean(abs), nil
}

// CanonicalPattern puts a policy's match glob in the same canonical form as
// the names it is matched against: when its first segment is a registry
// host, that host is lower-cased, loses a trailing dot and a default port
// (443 or 80: a glob does not know the scheme), and Docker Hub's aliases
// become docker.io, whose one-part names are under library/. Globs for
// layouts (paths) and host-less globs such as "**" are returned unchanged.
func CanonicalPattern(glob string) string {
	host, rest, ok := strings.Cut(glob, "/")
	if !ok || !looksLikeHost(host) {
		return glob
	}
	h, port := splitHost(host)
	if port == "443" || port == "80" {
		port = ""
	}
	if dockerHubAliases[h] && port == "" {
		h = dockerHub
		if !strings.Contains(rest, "/") && !strings.Contains(rest, "**") {
			rest = "library/" + rest
		}
	}
	return joinHost(h, port) + "/" + rest
}

// looksLikeHost says whether the first segment of a reference names a
// registry (as Docker decides: a dot, a port, or localhost).
func looksLikeHost(s string) bool {
	return strings.ContainsAny(s, ".:") || strings.EqualFold(s, "localhost") || strings.HasPrefix(s, "[")
}

// PolicyName is the name a policy rule matches for this target, in the
// canonical form of CanonicalRepository (a registry) or CanonicalLayoutPath
// (an OCI layout). Targets from OpenRemote and OpenLayout know it; for a
// Target built by hand it is derived from Name.
func (t *Target) PolicyName() string {
	if t.policyName != "" {
		return t.policyName
	}
	if _, layout := t.GraphTarget.(*oci.Store); layout {
		if p, err := CanonicalLayoutPath(t.Name); err == nil {
			return p
		}
		return t.Name
	}
	if n, err := CanonicalRepository(t.Name, false); err == nil {
		return n
	}
	return t.Name
}
