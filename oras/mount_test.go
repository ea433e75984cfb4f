package oras_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
)

// bodyCounter is a reverse proxy in front of a registry that counts the
// bytes of every request body it passes on, and can refuse
// cross-repository mounts as some registries do: it strips mount= and
// from= from the upload POST, so the registry opens a plain upload session
// and answers 202.
type bodyCounter struct {
	host    string
	sent    atomic.Int64
	mounts  atomic.Int64 // POSTs that asked for a mount
	refuse  bool
	created atomic.Int64 // 201 answers to a mount POST
}

func newBodyCounter(t testing.TB, registry string, refuse bool) *bodyCounter {
	t.Helper()
	c := &bodyCounter{refuse: refuse}
	target, _ := url.Parse("http://" + registry)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.Method == http.MethodPost && resp.Request.URL.Query().Get("mount") != "" && resp.StatusCode == http.StatusCreated {
			c.created.Add(1)
		}
		return nil
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = &countingBody{ReadCloser: r.Body, n: &c.sent}
		}
		if q := r.URL.Query(); r.Method == http.MethodPost && q.Get("mount") != "" {
			c.mounts.Add(1)
			if c.refuse {
				q.Del("mount")
				q.Del("from")
				r.URL.RawQuery = q.Encode()
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c.host = strings.TrimPrefix(srv.URL, "http://")
	return c
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// TestPushMountsWeightsFromAnotherRepository: weights already in one
// repository of a registry are pushed to another. When the digest cache
// knows where they were seen (recorded by an earlier push, or by a pull),
// the registry mounts them and no weight byte is sent; a registry that
// refuses mounts (202) still gets the whole model, uploaded. Either way
// the pushed model pulls and verifies.
func TestPushMountsWeightsFromAnotherRepository(t *testing.T) {
	ctx := context.Background()
	const big, small = 40 << 20, 3 << 20 // streamed, and sent in one request
	registries := map[string]func(t *testing.T) string{
		"embedded":     func(t *testing.T) string { return regtest.Embedded(t, "") },
		"distribution": func(t *testing.T) string { return regtest.Distribution(t, "") },
	}
	cases := []struct {
		name      string
		refuse    bool
		viaPull   bool // the record comes from a pull of the source repository
		wantMount bool
	}{
		{name: "recorded by push", wantMount: true},
		{name: "recorded by pull", viaPull: true, wantMount: true},
		{name: "registry refuses mounts", refuse: true, viaPull: true},
	}
	for rname, start := range registries {
		for _, tc := range cases {
			t.Run(rname+"/"+tc.name, func(t *testing.T) {
				proxy := newBodyCounter(t, start(t), tc.refuse)
				model := regtest.ModelDir(t, big)
				adapter := make([]byte, small)
				rand.Read(adapter)
				if err := os.WriteFile(filepath.Join(model, "adapter.safetensors"), adapter, 0o644); err != nil {
					t.Fatal(err)
				}
				pushCache, pullCache := t.TempDir(), t.TempDir()
				src := openRemote(t, proxy.host, "models/source", "")
				first, err := oras.PushModel(ctx, src, "v1", model, oras.PushOptions{Created: created, DigestCacheDir: pushCache})
				if err != nil {
					t.Fatal(err)
				}
				if first.Sent < big+small {
					t.Fatalf("first push sent %d bytes, want at least the weights (%d)", first.Sent, big+small)
				}
				dir, cache := model, pushCache
				if tc.viaPull {
					dir, cache = filepath.Join(t.TempDir(), "pulled"), pullCache
					if _, err := oras.Pull(ctx, src, first.Manifest, dir, oras.PullOptions{DigestCacheDir: pullCache}); err != nil {
						t.Fatal(err)
					}
				}

				proxy.sent.Store(0)
				dst := openRemote(t, proxy.host, "team/copy", "")
				res, err := oras.PushModel(ctx, dst, "v1", dir, oras.PushOptions{Created: created, DigestCacheDir: cache})
				if err != nil {
					t.Fatal(err)
				}
				if res.Manifest.Digest != first.Manifest.Digest {
					t.Fatalf("manifest %s, want %s", res.Manifest.Digest, first.Manifest.Digest)
				}
				sent := proxy.sent.Load()
				t.Logf("second push: %d bytes in request bodies (%d by the library's count), %d mount requests, %d mounted", sent, res.Sent, proxy.mounts.Load(), proxy.created.Load())
				weights := map[string]bool{"model.safetensors": true, "adapter.safetensors": true}
				for _, b := range res.Blobs {
					if !weights[b.Path] {
						continue
					}
					switch {
					case tc.wantMount && (b.Status != oras.BlobMounted || b.MountedFrom != "models/source" || b.Sent != 0):
						t.Errorf("%s: %s from %q, %d bytes sent; want mounted from models/source, nothing sent", b.Path, b.Status, b.MountedFrom, b.Sent)
					case !tc.wantMount && (b.Status != oras.BlobUploaded || b.Sent != b.Size):
						t.Errorf("%s: %s, %d of %d bytes sent; want uploaded whole", b.Path, b.Status, b.Sent, b.Size)
					}
				}
				if tc.wantMount {
					// Config and manifest are sent; they are a few KiB.
					if sent > 64<<10 || proxy.created.Load() < 2 {
						t.Errorf("%d bytes sent and %d mounts: the weights were not mounted", sent, proxy.created.Load())
					}
				} else if sent < big+small || proxy.mounts.Load() == 0 {
					t.Errorf("%d bytes sent after %d refused mounts, want the weights uploaded after asking", sent, proxy.mounts.Load())
				}

				out := filepath.Join(t.TempDir(), "out")
				if _, err := oras.Pull(ctx, dst, res.Manifest, out, oras.PullOptions{}); err != nil {
					t.Fatal(err)
				}
				regtest.SameContent(t, model, out)
			})
		}
	}
}

// TestPushSkipsBlobsTheRegistryHas: a re-push to the same repository asks
// HEAD for each file and sends none of them, without a digest cache
// (the old code hashed small files and uploaded them again).
func TestPushSkipsBlobsTheRegistryHas(t *testing.T) {
	ctx := context.Background()
	proxy := newBodyCounter(t, regtest.Embedded(t, ""), false)
	tgt := openRemote(t, proxy.host, "models/again", "")
	model := regtest.ModelDir(t, 3<<20)
	if _, err := oras.PushModel(ctx, tgt, "v1", model, oras.PushOptions{Created: created}); err != nil {
		t.Fatal(err)
	}
	proxy.sent.Store(0)
	res, err := oras.PushModel(ctx, tgt, "v1", model, oras.PushOptions{Created: created})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range res.Blobs {
		if b.Status != oras.BlobSkipped {
			t.Errorf("%s: %s, want skipped", b.Path, b.Status)
		}
	}
	// The tag is a PUT of the manifest, a few KiB.
	if n := proxy.sent.Load(); n > 64<<10 || res.Sent != 0 {
		t.Errorf("%d bytes sent (library says %d), want none of the files", n, res.Sent)
	}
	if res.Bytes < 3<<20 {
		t.Errorf("bytes %d, want the model's size", res.Bytes)
	}
}

// TestPushMountScopes: behind a token service (Harbor's pattern), a mount
// asks one token for push and pull on the destination and pull on the
// source. A user who may not pull the source gets no mount, and the push
// uploads instead of failing.
func TestPushMountScopes(t *testing.T) {
	ctx := context.Background()
	const user, password = "robot$models+ci", "s3cret"
	cases := []struct {
		name      string
		grant     func(repo string, actions []string) []string
		wantMount bool
	}{
		{name: "pull granted on the source", wantMount: true},
		{
			name: "no pull on the source",
			grant: func(repo string, actions []string) []string {
				if repo == "models/source" {
					return nil
				}
				return actions
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := regtest.NewTokenService(t, user, password)
			host := regtest.Distribution(t, ts.RegistryConfig())
			open := func(repo string) *oras.Target {
				tgt, err := oras.OpenRemote(ctx, host+"/"+repo, oras.RemoteOptions{PlainHTTP: true, Username: user, Password: password})
				if err != nil {
					t.Fatal(err)
				}
				return tgt
			}
			model, cache := regtest.ModelDir(t, 1<<20), t.TempDir()
			if _, err := oras.PushModel(ctx, open("models/source"), "v1", model, oras.PushOptions{Created: created, DigestCacheDir: cache}); err != nil {
				t.Fatal(err)
			}
			ts.SetGrant(tc.grant)
			dst := open("team/copy")
			res, err := oras.PushModel(ctx, dst, "v1", model, oras.PushOptions{Created: created, DigestCacheDir: cache})
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range res.Blobs {
				if tc.wantMount != (b.Status == oras.BlobMounted) {
					t.Errorf("%s: %s", b.Path, b.Status)
				}
			}
			asked := false
			for _, s := range ts.Scopes() {
				if slices.Contains(s, "repository:models/source:pull") && slices.Contains(s, "repository:team/copy:pull,push") {
					asked = true
				}
			}
			if !asked {
				t.Errorf("no token request asked for pull on the source with push on the destination: %q", ts.Scopes())
			}
			ts.SetGrant(nil)
			out := filepath.Join(t.TempDir(), "out")
			if _, err := oras.Pull(ctx, dst, res.Manifest, out, oras.PullOptions{}); err != nil {
				t.Fatal(err)
			}
			regtest.SameContent(t, model, out)
		})
	}
}

// TestCopyMountsWithinARegistry: copy between two repositories of one
// registry mounts the blobs instead of downloading and sending them; a
// registry that refuses mounts gets them copied. The copy (with its
// referrer) pulls and verifies either way.
func TestCopyMountsWithinARegistry(t *testing.T) {
	ctx := context.Background()
	const wsize = 8 << 20
	for _, refuse := range []bool{false, true} {
		for rname, start := range map[string]func(t *testing.T) string{
			"embedded":     func(t *testing.T) string { return regtest.Embedded(t, "") },
			"distribution": func(t *testing.T) string { return regtest.Distribution(t, "") },
		} {
			t.Run(fmt.Sprintf("%s/refuse=%v", rname, refuse), func(t *testing.T) {
				proxy := newBodyCounter(t, start(t), refuse)
				src := openRemote(t, proxy.host, "models/source", oras.ReferrersTag)
				model := regtest.ModelDir(t, wsize)
				desc := push(t, src, model)
				sig := attach(t, src, desc, "application/vnd.example.sig", "sig")
				proxy.sent.Store(0)
				dst := openRemote(t, proxy.host, "team/copy", oras.ReferrersTag)
				if err := oras.Copy(ctx, src, desc, dst, "v1", oras.CopyOptions{Referrers: true}); err != nil {
					t.Fatal(err)
				}
				sent := proxy.sent.Load()
				t.Logf("copy sent %d bytes after %d mount requests, %d mounted", sent, proxy.mounts.Load(), proxy.created.Load())
				if !refuse && (sent > 64<<10 || proxy.created.Load() == 0) {
					t.Errorf("%d bytes sent, %d mounts: the blobs were not mounted", sent, proxy.created.Load())
				}
				if refuse && sent < wsize {
					t.Errorf("%d bytes sent after refused mounts, want the weights copied", sent)
				}
				if got := referrerDigests(t, dst, desc); len(got) != 1 || got[sig.Digest] == "" {
					t.Fatalf("referrers in the copy: %v", got)
				}
				out := filepath.Join(t.TempDir(), "out")
				if _, err := oras.Pull(ctx, dst, desc, out, oras.PullOptions{}); err != nil {
					t.Fatal(err)
				}
				regtest.SameContent(t, model, out)
			})
		}
	}
}
