package admission

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// TestOneClientPerRepositoryAndCredentials: uncached reviews of a model
// on a registry that issues bearer tokens (as Harbor does) reuse one
// client, so one token, where each review used to open its own client,
// read the Docker config again and fetch a new token. Workloads with
// different credentials never share a client (nor its tokens).
func TestOneClientPerRepositoryAndCredentials(t *testing.T) {
	const robot, password = "robot$admission", "t0ken-s3rvice-pass"
	f := newFixture(t)
	ts := regtest.NewTokenService(t, robot, password)
	host := regtest.Distribution(t, ts.RegistryConfig())
	ctx := context.Background()
	tg, err := oras.OpenRemote(ctx, host+"/models/llama", oras.RemoteOptions{PlainHTTP: true, Username: robot, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	model := t.TempDir()
	if err := os.WriteFile(filepath.Join(model, "model.gguf"), []byte("weights "+time.Now().String()), 0o644); err != nil {
		t.Fatal(err)
	}
	desc, err := oras.Push(ctx, tg, "v1", model, oras.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := referrers.Sign(ctx, tg, desc, f.signer, referrers.AttachOptions{}); err != nil {
		t.Fatal(err)
	}
	f.writePolicy(strings.ReplaceAll(`version: 1
trust:
  release: {key: release.pub}
models:
  - match: ["{{AUTH}}/models/**"]
    signatures: {signers: [release]}
`, "{{AUTH}}", host))
	cfg := filepath.Join(t.TempDir(), "config.json")
	b, _ := json.Marshal(map[string]any{"auths": map[string]any{host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(robot + ":" + password))}}})
	if err := os.WriteFile(cfg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	w := f.webhook(Options{CacheTTL: -1, TagTTL: -1, Remote: oras.RemoteOptions{RegistryConfig: cfg}})

	before := len(ts.Issued())
	for i := range 3 {
		if r, _ := f.review(t, w, podRequest("ml", volumePod(host+"/models/llama:v1", nil)), false); !r.Allowed {
			t.Fatalf("review %d: %+v", i, r.Result)
		}
	}
	if n := len(ts.Issued()) - before; n != 1 {
		t.Errorf("3 uncached reviews fetched %d bearer tokens, want 1 (one client for the repository)", n)
	}

	// Credential sets: the same pull secret shares a client, another
	// secret or none (the webhook's own) gets its own.
	withSecret := func(user, pass string) *pullCreds {
		c := &pullCreds{w: w, namespace: "ml"}
		c.once.Do(func() { c.hosts = map[string]auth.Credential{registryKey(host): {Username: user, Password: pass}} })
		return c
	}
	repo := host + "/models/llama"
	open := func(c *pullCreds) *oras.Target {
		t.Helper()
		tg, err := w.openTarget(ctx, repo, c)
		if err != nil {
			t.Fatal(err)
		}
		return tg
	}
	a1, a2, other, own := open(withSecret(robot, password)), open(withSecret(robot, password)), open(withSecret(robot, "wrong")), open(nil)
	if a1 != a2 {
		t.Error("one pull secret opened two clients")
	}
	if a1 == other || a1 == own || other == own {
		t.Error("different credentials share a client, and so its tokens")
	}
	if _, err := oras.Resolve(ctx, other, "v1"); err == nil {
		t.Error("a wrong pull secret resolved the tag: it used another credential set's token")
	}
}
