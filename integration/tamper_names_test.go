package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// authRecorder is a reverse proxy that records who each request's
// Authorization header speaks for: it stands for the destination's host,
// which must only ever see the destination's credentials.
type authRecorder struct {
	Host  string
	mu    sync.Mutex
	users []string
}

func newAuthRecorder(t *testing.T, host string) *authRecorder {
	t.Helper()
	a := &authRecorder{}
	target, _ := url.Parse("http://" + host)
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := r.Header.Get("Authorization"); h != "" {
			who := h
			if b, ok := strings.CutPrefix(h, "Basic "); ok {
				if raw, err := base64.StdEncoding.DecodeString(b); err == nil {
					who, _, _ = strings.Cut(string(raw), ":")
				}
			}
			a.mu.Lock()
			a.users = append(a.users, who)
			a.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	a.Host = strings.TrimPrefix(srv.URL, "http://")
	return a
}

func (a *authRecorder) seen() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.users)
}

// TestTamperCopyCredentials: copy talks to two registries, and one side's
// credentials never reach the other. Before the fix, `copy -u alice -p …`
// sent alice's Basic header to the destination's host.
func TestTamperCopyCredentials(t *testing.T) {
	dir := t.TempDir()
	src := serve(t, t.TempDir(), "--htpasswd", regtest.Htpasswd(t, filepath.Join(dir), "alice", "alice-pass"))
	dstDir := t.TempDir()
	dst := serve(t, t.TempDir(), "--htpasswd", regtest.Htpasswd(t, dstDir, "bob", "bob-pass"))
	rec := newAuthRecorder(t, dst.Host)
	model := regtest.ModelDir(t, 1000)
	ref := src.Host + "/models/tiny:v1"
	ma(t, "push", "--plain-http", "--no-progress", "-u", "alice", "-p", "alice-pass", ref, model)

	t.Run("one -u/-p for both sides is refused", func(t *testing.T) {
		out, code := maCode(t, "copy", "-r", "--no-progress", "--plain-http", "-u", "alice", "-p", "alice-pass", ref, rec.Host+"/mirror/tiny:v1")
		if slices.Contains(rec.seen(), "alice") {
			t.Fatalf("alice's Authorization header reached the destination (exit %d)\n%s", code, out)
		}
		if code != 2 || !strings.Contains(out, "--from-username/--to-username") || !strings.Contains(out, "--from-plain-http/--to-plain-http") {
			t.Fatalf("exit %d, want 2 naming the per-side flags\n%s", code, out)
		}
	})
	t.Run("per-side credentials reach only their side", func(t *testing.T) {
		out, code := maEnv(t, nil, "bob-pass\n", "copy", "-r", "--no-progress",
			"--from-plain-http", "--from-username", "alice", "--from-password", "alice-pass",
			"--to-plain-http", "--to-username", "bob", "--to-password-stdin",
			ref, rec.Host+"/mirror/tiny:v1")
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, out)
		}
		seen := rec.seen()
		if slices.Contains(seen, "alice") || !slices.Contains(seen, "bob") {
			t.Fatalf("the destination saw credentials of %v, want bob's only", seen)
		}
		pulled := filepath.Join(t.TempDir(), "pulled")
		ma(t, "pull", "--plain-http", "--no-progress", "--insecure-skip-verify", "-u", "bob", "-p", "bob-pass", "-o", pulled, dst.Host+"/mirror/tiny:v1")
		regtest.SameTree(t, model, pulled)
	})
	t.Run("both passwords on standard input is refused", func(t *testing.T) {
		_, code := maEnv(t, nil, "x\n", "copy", "--from-password-stdin", "--to-password-stdin", "--from-username", "a", "--to-username", "b", ref, rec.Host+"/x:v1")
		if code != 2 {
			t.Fatalf("exit %d, want 2", code)
		}
	})
	t.Run("plain-HTTP source to a TLS destination", func(t *testing.T) {
		certDir := t.TempDir()
		cert, key := regtest.SelfSignedCert(t, certDir)
		tlsDst := serve(t, t.TempDir(), "--tls-cert", cert, "--tls-key", key)
		out, code := maCode(t, "copy", "-r", "--no-progress", "--from-plain-http", "--from-username", "alice", "--from-password", "alice-pass",
			"--to-ca-file", cert, ref, tlsDst.Host+"/mirror/tiny:v1")
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, out)
		}
		pulled := filepath.Join(t.TempDir(), "pulled")
		ma(t, "pull", "--ca-file", cert, "--no-progress", "--insecure-skip-verify", "-o", pulled, tlsDst.Host+"/mirror/tiny:v1")
		regtest.SameTree(t, model, pulled)
	})
}

// TestTamperNames: a policy rule sees one spelling of a name. Before the
// fix, LOCALHOST:PORT/models/x fell through a strict rule for
// localhost:PORT/models/** to a later audit rule, and so did a layout
// reached through a symlink or, in the library, by a relative name.
func TestTamperNames(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(key.Public())
	os.WriteFile(filepath.Join(dir, "release.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)

	host := regtest.Embedded(t, "")
	_, port, _ := net.SplitHostPort(host)
	base, _ := filepath.EvalSymlinks(t.TempDir())
	layout := filepath.Join(base, "layout")
	policy := filepath.Join(dir, "policy.yaml")
	os.WriteFile(policy, []byte(fmt.Sprintf(`version: 1
trust:
  release: {key: release.pub}
models:
  - match: ["localhost:%[1]s/models/**", "LOCALHOST:%[1]s/upper/**", "%[2]s"]
    signatures: {signers: [release]}
  - match: ["**"]
    mode: audit
    signatures: {signers: [release]}
`, port, layout)), 0o644)
	for _, repo := range []string{"models/x", "upper/x"} {
		tgt, err := oras.OpenRemote(ctx, host+"/"+repo, oras.RemoteOptions{PlainHTTP: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := oras.Push(ctx, tgt, "v1", regtest.ModelDir(t, 100), oras.PushOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	lay, err := oras.OpenLayout(layout)
	if err != nil {
		t.Fatal(err)
	}
	model, err := oras.Push(ctx, lay, "v1", regtest.ModelDir(t, 100), oras.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	os.Symlink(layout, filepath.Join(base, "link"))

	// A trailing dot and default ports are unit-tested (oras/names_test.go):
	// localhost. does not resolve everywhere, and port 80 needs root.
	for name, args := range map[string][]string{
		"host in capitals":       {"--plain-http", "LOCALHOST:" + port + "/models/x:v1"},
		"glob in capitals":       {"--plain-http", "localhost:" + port + "/upper/x:v1"},
		"layout through symlink": {"--oci-layout", filepath.Join(base, "link") + ":v1"},
	} {
		t.Run(name, func(t *testing.T) {
			out, code := maCode(t, append([]string{"verify", "--policy", policy}, args...)...)
			if code != 3 || !strings.Contains(out, "rule 0") {
				t.Fatalf("exit %d, want 3 under the strict rule 0\n%s", code, out)
			}
		})
	}
	t.Run("library: layout by a relative name", func(t *testing.T) {
		t.Chdir(base)
		rel, err := oras.OpenLayout("link")
		if err != nil {
			t.Fatal(err)
		}
		p, err := referrers.LoadPolicy(ctx, policy)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := referrers.VerifyModel(ctx, rel, rel.Name, model, p, referrers.VerifyOptions{})
		var pe *referrers.PolicyError
		if !errors.As(err, &pe) || rep.Rule != 0 || rep.Repository != layout {
			t.Fatalf("VerifyModel(Name %q): rule %d, repository %q, err %v; want rule 0 on %s refused", rel.Name, rep.Rule, rep.Repository, err, layout)
		}
	})
}
