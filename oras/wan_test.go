package oras_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
)

// ciWAN is a small wide-area link for correctness tests: a 20 ms round
// trip, 16 MB/s and 1 MiB in flight per connection, 96 MB/s in all. One
// connection cannot fill it; a 64 MiB blob takes about a second.
var ciWAN = regtest.WANOptions{Delay: 10 * time.Millisecond, ConnRate: 16e6, InFlight: 1 << 20, LinkRate: 96e6}

const wanBlob = 64 << 20

// wanSetup is a distribution registry with a password, a model pushed to
// it directly, and the link the pull goes through.
type wanSetup struct {
	registry string
	link     *regtest.WANLink
	model    string
	desc     ocispec.Descriptor
	weights  digest.Digest
}

const wanUser, wanPassword = "robot", "s3cret-wan"

func newWANSetup(t *testing.T) *wanSetup {
	t.Helper()
	w := &wanSetup{link: regtest.NewWANLink(ciWAN), model: regtest.ModelDir(t, wanBlob)}
	w.registry = regtest.Distribution(t, regtest.HtpasswdConfig(regtest.Htpasswd(t, t.TempDir(), wanUser, wanPassword)))
	tgt, err := oras.OpenRemote(context.Background(), w.registry+"/models/big", oras.RemoteOptions{PlainHTTP: true, Username: wanUser, Password: wanPassword})
	if err != nil {
		t.Fatal(err)
	}
	w.desc = push(t, tgt, w.model)
	b, _ := os.ReadFile(filepath.Join(w.model, "model.safetensors"))
	w.weights = digest.FromBytes(b)
	return w
}

func (w *wanSetup) open(t *testing.T, host string, o oras.RemoteOptions) *oras.Target {
	t.Helper()
	o.Username, o.Password = wanUser, wanPassword
	if o.CAFile == "" {
		o.PlainHTTP = true
	}
	tgt, err := oras.OpenRemote(context.Background(), host+"/models/big", o)
	if err != nil {
		t.Fatal(err)
	}
	return tgt
}

func weightsOf(t *testing.T, res *oras.PullResult) *oras.TransferStats {
	t.Helper()
	for _, f := range res.Files {
		if f.Path == "model.safetensors" {
			if f.Transfer == nil {
				t.Fatal("no transfer figures for the weights")
			}
			return f.Transfer
		}
	}
	t.Fatal("weights not pulled")
	return nil
}

// distinct counts the client connections (remote addresses) of requests.
func distinct(reqs []regtest.StoreRequest) int {
	seen := map[string]bool{}
	for _, r := range reqs {
		if r.Range != "" {
			seen[r.RemoteAddr] = true
		}
	}
	return len(seen)
}

// The weights come over the emulated link in ranges on several
// connections, through a storage redirect whose URLs expire, and over TLS
// on HTTP/1.1; the registry's password never reaches the object store.
func TestWANPull(t *testing.T) {
	w := newWANSetup(t)
	tests := []struct {
		name string
		// front puts a StorageFront between the link and the registry.
		front *regtest.StorageFrontOptions
		// sameHost writes the object store's URL with the registry's host
		// name (another port): Go's own redirect rule would forward the
		// registry's credentials there (oras-go strips them; the range
		// client never has them).
		sameHost bool
		// maxConns spreads the ranges over time (0: the default).
		maxConns int
		check    func(t *testing.T, f *regtest.StorageFront, st *oras.TransferStats)
	}{
		{name: "delay and caps"},
		// Two connections take 2 s for the blob: later ranges meet an
		// expired URL, while a fresh one is used within a round trip.
		{name: "storage redirect, URL expires", maxConns: 2, front: &regtest.StorageFrontOptions{Redirect: true, URLTTL: 300 * time.Millisecond, Username: wanUser, Password: wanPassword},
			check: func(t *testing.T, f *regtest.StorageFront, st *oras.TransferStats) {
				if !st.Redirected || st.Resolves < 2 {
					t.Errorf("redirected %v after %d resolves, want a re-resolve of the expired URL", st.Redirected, st.Resolves)
				}
				expired := 0
				for _, r := range f.StoreRequests() {
					if r.Status == http.StatusForbidden {
						expired++
					}
				}
				if expired == 0 {
					t.Error("the object store never refused an expired URL: the test did not test")
				}
			}},
		{name: "storage redirect to the same host name", sameHost: true, front: &regtest.StorageFrontOptions{Redirect: true, Username: wanUser, Password: wanPassword}},
		{name: "TLS", front: &regtest.StorageFrontOptions{TLS: true},
			check: func(t *testing.T, f *regtest.StorageFront, st *oras.TransferStats) {
				reqs := f.FrontRequests()
				for _, r := range reqs {
					if r.Range != "" && r.Proto != "HTTP/1.1" {
						t.Fatalf("a range went over %s, want HTTP/1.1", r.Proto)
					}
				}
				if n := distinct(reqs); n < 2 {
					t.Errorf("ranges came on %d connection(s), want several", n)
				}
			}},
		{name: "TLS and storage redirect", front: &regtest.StorageFrontOptions{TLS: true, Redirect: true, Username: wanUser, Password: wanPassword},
			check: func(t *testing.T, f *regtest.StorageFront, st *oras.TransferStats) {
				reqs := f.StoreRequests()
				for _, r := range reqs {
					if r.Range != "" && r.Proto != "HTTP/1.1" {
						t.Fatalf("a range went over %s, want HTTP/1.1", r.Proto)
					}
				}
				if n := distinct(reqs); n < 2 {
					t.Errorf("ranges came on %d connection(s), want several", n)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := w.link.Proxy(t, w.registry)
			var f *regtest.StorageFront
			var ro oras.RemoteOptions
			if tt.front != nil {
				f = regtest.NewStorageFront(t, w.registry, *tt.front)
				host = w.link.Proxy(t, f.Host)
				_, port, _ := net.SplitHostPort(w.link.Proxy(t, f.StoreAddr))
				public := "localhost:" + port
				if tt.sameHost {
					public = "127.0.0.1:" + port
				}
				f.SetStorePublic(public)
				ro.CAFile = f.CAFile
			}
			out := filepath.Join(t.TempDir(), "out")
			res, err := oras.Pull(context.Background(), w.open(t, host, ro), w.desc, out, oras.PullOptions{MaxConnections: tt.maxConns})
			if err != nil {
				t.Fatal(err)
			}
			regtest.SameTree(t, w.model, out)
			st := weightsOf(t, res)
			t.Logf("weights: %+v; %d connections through the link", *st, w.link.Conns())
			if st.Ranges < 2 || st.Connections < 2 || st.Bytes != wanBlob {
				t.Errorf("weights: %+v, want several ranges on several connections and every byte once", *st)
			}
			// The range at the hashed point is hashed as it arrives; ranges
			// ahead of it are read back from the staging file.
			if st.ReadBack <= 0 || st.ReadBack >= wanBlob {
				t.Errorf("weights: %+v, want some bytes hashed inline and some read back", *st)
			}
			if f != nil {
				for _, r := range f.StoreRequests() {
					if r.Authorization {
						t.Fatalf("the object store got an Authorization header (%s %s)", r.Range, r.RemoteAddr)
					}
				}
				if tt.front.Redirect && len(f.StoreRequests()) == 0 {
					t.Fatal("nothing came from the object store")
				}
			}
			if tt.check != nil {
				tt.check(t, f, st)
			}
		})
	}
}

// With one connection every range starts where the hash stands, so no
// byte is read back from the staging file: one copy less per byte.
func TestWANPullOneConnectionHashesInline(t *testing.T) {
	w := newWANSetup(t)
	out := filepath.Join(t.TempDir(), "out")
	res, err := oras.Pull(context.Background(), w.open(t, w.link.Proxy(t, w.registry), oras.RemoteOptions{}), w.desc, out, oras.PullOptions{MaxConnections: 1})
	if err != nil {
		t.Fatal(err)
	}
	regtest.SameTree(t, w.model, out)
	if st := weightsOf(t, res); st.Connections != 1 || st.Ranges < 2 || st.ReadBack != 0 || st.Bytes != wanBlob {
		t.Errorf("weights: %+v, want ranges on one connection, all hashed as they arrived", *st)
	}
}

// A range that stalls does not hold the pull: once everything else is
// handed out, the free connection takes the second half of the stalled
// range, and the stalled one stops where its half ends (no byte is
// fetched twice).
func TestWANPullStealsFromAStalledRange(t *testing.T) {
	w := newWANSetup(t)
	proxy := regtest.NewProxy(t, w.registry)
	// The first range after the 2 MiB probe answers 4 s late; the other
	// connection fetches the rest of the 64 MiB at 16 MB/s in about 3 s.
	stalled := fmt.Sprintf("bytes=%d-", 2<<20)
	proxy.SetDelay(func(r *http.Request) time.Duration {
		if strings.HasPrefix(r.Header.Get("Range"), stalled) {
			return 4 * time.Second
		}
		return 0
	})
	out := filepath.Join(t.TempDir(), "out")
	res, err := oras.Pull(context.Background(), w.open(t, w.link.Proxy(t, proxy.Host), oras.RemoteOptions{}), w.desc, out, oras.PullOptions{MaxConnections: 2})
	if err != nil {
		t.Fatal(err)
	}
	regtest.SameTree(t, w.model, out)
	if st := weightsOf(t, res); st.Steals < 1 || st.Bytes != wanBlob {
		t.Errorf("weights: %+v, want the stalled range stolen from and every byte fetched once", *st)
	}
}

// A registry that redirects blob GETs to its own origin, where its
// credentials are still wanted, gets them there, as one stream following
// the redirect would: the ranged pull neither fails nor takes them to
// another origin (that case is "storage redirect to the same host name"
// above, whose store refuses any Authorization).
func TestWANPullSameOriginRedirect(t *testing.T) {
	w := newWANSetup(t)
	registry, err := url.Parse("http://" + w.registry)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(registry)
	var signed, withAuth atomic.Int64
	front := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			if r.URL.Query().Get("signed") == "" {
				http.Redirect(rw, r, r.URL.Path+"?signed=1", http.StatusTemporaryRedirect)
				return
			}
			signed.Add(1)
			if r.Header.Get("Authorization") != "" {
				withAuth.Add(1)
			}
			r.URL.RawQuery = ""
		}
		rp.ServeHTTP(rw, r)
	}))
	defer front.Close()
	out := filepath.Join(t.TempDir(), "out")
	res, err := oras.Pull(context.Background(), w.open(t, strings.TrimPrefix(front.URL, "http://"), oras.RemoteOptions{}), w.desc, out, oras.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	regtest.SameTree(t, w.model, out)
	if st := weightsOf(t, res); st.Ranges < 2 || st.Bytes != wanBlob {
		t.Errorf("weights: %+v, want ranges, every byte once", *st)
	}
	if withAuth.Load() < 2 {
		t.Errorf("%d of %d requests to the redirect target carried credentials, want the ranges' (2 or more)", withAuth.Load(), signed.Load())
	}
}

// A registry that ignores Range (or answers 200) gets one stream.
func TestWANPullWithoutRanges(t *testing.T) {
	w := newWANSetup(t)
	proxy := regtest.NewProxy(t, w.registry)
	proxy.SetFault(func(r *http.Request) int { r.Header.Del("Range"); return 0 })
	out := filepath.Join(t.TempDir(), "out")
	res, err := oras.Pull(context.Background(), w.open(t, w.link.Proxy(t, proxy.Host), oras.RemoteOptions{}), w.desc, out, oras.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	regtest.SameTree(t, w.model, out)
	if st := weightsOf(t, res); st.Connections != 1 || st.Ranges != 0 || st.Bytes != wanBlob {
		t.Errorf("weights: %+v, want one stream", *st)
	}
	if n := proxy.Count("GET", "/v2/models/big/blobs/"+w.weights.String()); n != 2 {
		t.Errorf("%d GETs of the weights, want 2 (the first range, answered 200, then the stream)", n)
	}
}

// A pull cut at 90 % resumes per range: the re-run fetches only what the
// first did not write, counted at the link, and still hashes every byte.
func TestWANPullResumesPerRange(t *testing.T) {
	w := newWANSetup(t)
	host := w.link.Proxy(t, w.registry)
	out := filepath.Join(t.TempDir(), "out")
	w.link.CutAfter(wanBlob * 9 / 10)
	_, err := oras.Pull(context.Background(), w.open(t, host, oras.RemoteOptions{}), w.desc, out, oras.PullOptions{})
	if err == nil {
		t.Fatal("the pull went through a cut link")
	}
	staging := filepath.Join(filepath.Dir(out), ".out.modelattest-partial")
	for _, ext := range []string{".partial", ".ranges"} {
		if _, err := os.Stat(filepath.Join(staging, w.weights.Encoded()+ext)); err != nil {
			t.Fatalf("no %s kept after the cut: %v (%v)", ext, err, regtest.Entries(t, staging))
		}
	}
	w.link.Heal()
	w.link.ResetCounts()
	res, err := oras.Pull(context.Background(), w.open(t, host, oras.RemoteOptions{}), w.desc, out, oras.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	regtest.SameTree(t, w.model, out)
	if served := w.link.Served(); served > wanBlob*15/100 {
		t.Errorf("the re-run fetched %d bytes (%.0f %% of the blob), want at most 15 %%", served, 100*float64(served)/wanBlob)
	}
	if st := weightsOf(t, res); st.ResumedBytes < wanBlob*3/4 || st.ReadBack < st.ResumedBytes {
		t.Errorf("weights: %+v, want most of the blob resumed, and hashed again from disk", *st)
	}
}

// Resumed bytes are hashed like fetched ones: a partial file whose record
// claims bytes it does not hold fails the digest, is dropped, and the blob
// is fetched again whole; a tampered range is refused with nothing left.
func TestWANPullRefusals(t *testing.T) {
	w := newWANSetup(t)
	t.Run("planted partial", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out")
		staging := filepath.Join(filepath.Dir(out), ".out.modelattest-partial")
		if err := os.Mkdir(staging, 0o700); err != nil {
			t.Fatal(err)
		}
		garbage := make([]byte, wanBlob)
		os.WriteFile(filepath.Join(staging, w.weights.Encoded()+".partial"), garbage, 0o600)
		os.WriteFile(filepath.Join(staging, w.weights.Encoded()+".ranges"), []byte("0 67108864\n"), 0o600)
		res, err := oras.Pull(context.Background(), w.open(t, w.link.Proxy(t, w.registry), oras.RemoteOptions{}), w.desc, out, oras.PullOptions{})
		if err != nil {
			t.Fatal(err)
		}
		regtest.SameTree(t, w.model, out)
		if st := weightsOf(t, res); st.Bytes != wanBlob {
			t.Errorf("weights: %+v, want the whole blob fetched again", *st)
		}
	})
	t.Run("tampered range", func(t *testing.T) {
		proxy := regtest.NewProxy(t, w.registry)
		proxy.SetTamper(func(r *http.Request, b []byte) []byte {
			if strings.Contains(r.URL.Path, w.weights.Encoded()) && r.Header.Get("Range") != "" && !strings.HasPrefix(r.Header.Get("Range"), "bytes=0-") && len(b) > 0 {
				b[len(b)/2] ^= 1
			}
			return b
		})
		out := filepath.Join(t.TempDir(), "out")
		_, err := oras.Pull(context.Background(), w.open(t, w.link.Proxy(t, proxy.Host), oras.RemoteOptions{}), w.desc, out, oras.PullOptions{})
		if !errors.Is(err, oras.ErrIntegrity) {
			t.Fatalf("err = %v, want ErrIntegrity", err)
		}
		assertNothingWritten(t, out)
	})
}
