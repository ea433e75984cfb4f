package oras_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/modelattest/modelattest/oras"
)

func TestCanonicalRepository(t *testing.T) {
	for _, c := range []struct {
		ref       string
		plainHTTP bool
		want      string
	}{
		{"LOCALHOST:5601/models/x:v1", false, "localhost:5601/models/x"},
		{"Harbor.Acme.Example./models/x@sha256:" + sha256Hex, false, "harbor.acme.example/models/x"},
		{"harbor.acme.example:443/models/x", false, "harbor.acme.example/models/x"},
		{"harbor.acme.example:443/models/x", true, "harbor.acme.example:443/models/x"},
		{"harbor.acme.example:80/models/x", true, "harbor.acme.example/models/x"},
		{"harbor.acme.example:80/models/x", false, "harbor.acme.example:80/models/x"},
		{"docker.io/ubuntu", false, "docker.io/library/ubuntu"},
		{"index.docker.io/library/ubuntu:24.04", false, "docker.io/library/ubuntu"},
		{"registry-1.docker.io:443/acme/llm", false, "docker.io/acme/llm"},
		{"Registry-1.Docker.IO/acme/llm", false, "docker.io/acme/llm"},
		{"[::1]:443/models/x", false, "[::1]/models/x"},
		{"[::1]:5000/models/x", false, "[::1]:5000/models/x"},
		{"127.0.0.1:5000/models/x", true, "127.0.0.1:5000/models/x"},
	} {
		got, err := oras.CanonicalRepository(c.ref, c.plainHTTP)
		if err != nil || got != c.want {
			t.Errorf("CanonicalRepository(%q, plainHTTP=%v) = %q, %v; want %q", c.ref, c.plainHTTP, got, err, c.want)
		}
	}
}

const sha256Hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestCanonicalPattern(t *testing.T) {
	for glob, want := range map[string]string{
		"LOCALHOST:5601/models/**":           "localhost:5601/models/**",
		"Harbor.Acme.Example.:443/models/*":  "harbor.acme.example/models/*",
		"registry.local:80/models/**":        "registry.local/models/**",
		"*.dkr.ecr.*.amazonaws.com/llm/*":    "*.dkr.ecr.*.amazonaws.com/llm/*",
		"index.docker.io/ubuntu":             "docker.io/library/ubuntu",
		"docker.io/*":                        "docker.io/library/*",
		"docker.io/**":                       "docker.io/**",
		"registry-1.docker.io/acme/*":        "docker.io/acme/*",
		"**":                                 "**",
		"models/**":                          "models/**",
		"/srv/layouts/**":                    "/srv/layouts/**",
		"harbor.acme.example:8443/models/**": "harbor.acme.example:8443/models/**",
	} {
		if got := oras.CanonicalPattern(glob); got != want {
			t.Errorf("CanonicalPattern(%q) = %q, want %q", glob, got, want)
		}
	}
}

// TestPolicyNameOfLayout: a layout is named by its cleaned absolute path
// with symlinks resolved, however it was opened.
func TestPolicyNameOfLayout(t *testing.T) {
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	real := filepath.Join(base, "real")
	if _, err := oras.OpenLayout(real); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, filepath.Join(base, "link")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(base)
	for _, ref := range []string{"real", "./real/", "link:v1", filepath.Join(base, "x", "..", "link") + "@sha256:" + sha256Hex} {
		tgt, err := oras.OpenLayout(ref)
		if err != nil {
			t.Fatal(err)
		}
		if got := tgt.PolicyName(); got != real {
			t.Errorf("OpenLayout(%q).PolicyName() = %q, want %q", ref, got, real)
		}
		hand := &oras.Target{GraphTarget: tgt.GraphTarget, Name: "link"}
		if got := hand.PolicyName(); got != real {
			t.Errorf("hand-built Target{Name: link}.PolicyName() = %q, want %q", got, real)
		}
	}
}

// TestCanonicalIPv6Host: an IPv6 literal registry has one canonical
// spelling in names and in policy globs, so a rule written for it cannot be
// stepped around by spelling the host another way (old code: "[::1]/x" was
// named "[[::1]]/x", the glob "[::1]:443/x" became "::1/x" and
// "[0:0::1]" was a different host from "[::1]", so each fell through to a
// later, laxer rule).
func TestCanonicalIPv6Host(t *testing.T) {
	for _, c := range []struct{ ref, glob string }{
		{"[::1]/prod/x:v1", "[::1]/prod/x"},
		{"[::1]:443/prod/x", "[::1]/prod/x"},
		{"[::1]/prod/x", "[::1]:443/prod/x"},
		{"[0:0:0:0:0:0:0:1]/prod/x", "[::1]/prod/x"},
		{"[::1]/prod/x", "[0::1]/prod/x"},
		{"[FD00::AB]:5000/prod/x", "[fd00::ab]:5000/prod/x"},
		{"[fd00:0::ab]:5000/prod/x", "[FD00::AB]:5000/prod/x"},
	} {
		name, err := oras.CanonicalRepository(c.ref, false)
		if err != nil {
			t.Fatalf("CanonicalRepository(%q): %v", c.ref, err)
		}
		if pat := oras.CanonicalPattern(c.glob); name != pat {
			t.Errorf("CanonicalRepository(%q) = %q but CanonicalPattern(%q) = %q: the rule would not apply", c.ref, name, c.glob, pat)
		}
	}
}

// TestCanonicalPortSpelling: a port with leading zeros is the same port
// (net.Dial reads "0443" as 443), so it is written one way in names and
// globs (old code: registry.example:0443/prod/x kept its ":0443", did not
// match a rule for registry.example/prod/** and fell through to a later
// rule, though it is the same registry).
func TestCanonicalPortSpelling(t *testing.T) {
	for _, c := range []struct {
		ref       string
		plainHTTP bool
		glob      string
	}{
		{"registry.example:0443/prod/x", false, "registry.example/prod/x"},
		{"registry.example:00443/prod/x", false, "registry.example:443/prod/x"},
		{"registry.example:080/prod/x", true, "registry.example/prod/x"},
		{"registry.example:05000/prod/x", false, "registry.example:5000/prod/x"},
		{"registry.example:5000/prod/x", false, "registry.example:05000/prod/x"},
		{"[::1]:0443/prod/x", false, "[::1]/prod/x"},
	} {
		name, err := oras.CanonicalRepository(c.ref, c.plainHTTP)
		if err != nil {
			t.Fatalf("CanonicalRepository(%q): %v", c.ref, err)
		}
		if pat := oras.CanonicalPattern(c.glob); name != pat {
			t.Errorf("CanonicalRepository(%q) = %q but CanonicalPattern(%q) = %q: the rule would not apply", c.ref, name, c.glob, pat)
		}
	}
}
