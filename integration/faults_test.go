package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"oras.land/oras-go/v2/registry/remote/retry"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
)

// faultRuns is how many seeded runs of push and of pull each test makes.
const faultRuns = 200

// faults is a seeded plan of what goes wrong with each request: 5xx
// bursts, 429 with Retry-After, a connection cut mid-blob, a stall, wrong
// bytes. The same seed replays the same plan for the same requests.
type faults struct {
	mu   sync.Mutex
	rng  *rand.Rand
	rate float64
}

func (f *faults) roll() (float64, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rng.Float64(), f.rng.Intn(1 << 20)
}

func (f *faults) install(p *regtest.Proxy) {
	p.SetFault(func(r *http.Request) int {
		x, _ := f.roll()
		switch {
		case x < f.rate*0.4:
			return []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable}[int(x*1000)%3]
		case x < f.rate*0.5:
			return http.StatusTooManyRequests
		}
		return 0
	})
	p.SetDrop(func(r *http.Request) int64 {
		x, n := f.roll()
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") && x < f.rate*0.3 {
			return int64(n % 4096)
		}
		return -1
	})
	p.SetDelay(func(r *http.Request) time.Duration {
		if x, n := f.roll(); x < f.rate*0.2 {
			return time.Duration(n%20) * time.Millisecond
		}
		return 0
	})
	p.SetTamper(func(r *http.Request, b []byte) []byte {
		if x, n := f.roll(); strings.Contains(r.URL.Path, "/blobs/") && len(b) > 0 && x < f.rate*0.2 {
			b = bytes.Clone(b)
			b[n%len(b)] ^= 0x20
		}
		return b
	})
}

func (f *faults) clear(p *regtest.Proxy) {
	p.SetFault(nil)
	p.SetDrop(nil)
	p.SetDelay(nil)
	p.SetTamper(nil)
}

// fastRetry keeps the retry behaviour and shortens its waits.
var fastRetry = &retry.GenericPolicy{Retryable: retry.DefaultPredicate,
	Backoff: retry.ExponentialBackoff(5*time.Millisecond, 2, 0.1), MinWait: 5 * time.Millisecond, MaxWait: 50 * time.Millisecond, MaxRetry: 5}

// assertNoPartial fails if a failed pull left anything in out or a partial
// download beside it.
func assertNoPartial(t *testing.T, out string) {
	t.Helper()
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("a failed pull created %s: %v", out, regtest.Entries(t, out))
	}
	for _, name := range regtest.Entries(t, filepath.Dir(out)) {
		for _, staged := range regtest.Entries(t, filepath.Join(filepath.Dir(out), name)) {
			if strings.Contains(staged, ".part") || strings.HasPrefix(staged, "x-") {
				t.Fatalf("partial download left: %s/%s", name, staged)
			}
		}
	}
}

// TestPullUnderFaults: 200 seeded pulls through a faulty network either
// produce exactly the model or fail with an error; never a partial or
// corrupt file; a re-run without faults finishes without fetching again
// what a failed run already verified.
func TestPullUnderFaults(t *testing.T) {
	ctx := context.Background()
	proxy := regtest.NewProxy(t, regtest.Embedded(t, ""))
	tgt, err := oras.OpenRemote(ctx, proxy.Host+"/models/tiny", oras.RemoteOptions{PlainHTTP: true, RetryPolicy: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	model := regtest.ModelDir(t, 48<<10)
	desc, err := oras.Push(ctx, tgt, "v1", model, oras.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ok, failed, resumed := 0, 0, 0
	deadline := time.Now().Add(4 * time.Minute)
	for seed := int64(1); seed <= faultRuns; seed++ {
		if time.Now().After(deadline) {
			t.Fatalf("fault runs took too long: %d done", seed-1)
		}
		f := &faults{rng: rand.New(rand.NewSource(seed)), rate: 0.25}
		f.install(proxy)
		out := filepath.Join(t.TempDir(), "out")
		_, err := oras.Pull(ctx, tgt, desc, out, oras.PullOptions{})
		f.clear(proxy)
		if err == nil {
			ok++
			regtest.SameTree(t, model, out)
			continue
		}
		failed++
		if msg := err.Error(); msg == "" || strings.Contains(msg, "panic") {
			t.Fatalf("seed %d: unclear error %q", seed, msg)
		}
		assertNoPartial(t, out)
		// Re-run with the network healthy: it must finish, and fetch only
		// what the failed run had not verified.
		proxy.Reset()
		res, err := oras.Pull(ctx, tgt, desc, out, oras.PullOptions{})
		if err != nil {
			t.Fatalf("seed %d: re-run: %v", seed, err)
		}
		regtest.SameTree(t, model, out)
		kept := 0
		for _, pf := range res.Files {
			if pf.Status == "resumed" {
				kept++
			}
		}
		if got := proxy.Count("GET", "/v2/models/tiny/blobs/"); got != 1+len(res.Files)-kept {
			t.Fatalf("seed %d: re-run fetched %d blobs, want %d (config + %d not yet verified)", seed, got, 1+len(res.Files)-kept, len(res.Files)-kept)
		}
		if kept > 0 {
			resumed++
		}
	}
	t.Logf("pull under faults: %d runs, %d succeeded, %d failed cleanly (%d of them resumed verified blobs)", faultRuns, ok, failed, resumed)
	if ok == 0 || failed == 0 {
		t.Fatalf("the fault plan is not exercising both outcomes: %d ok, %d failed", ok, failed)
	}
}

// TestPushUnderFaults: 200 seeded pushes through a faulty network either
// store exactly the model (checked by a clean pull) or fail with an error.
func TestPushUnderFaults(t *testing.T) {
	ctx := context.Background()
	proxy := regtest.NewProxy(t, regtest.Embedded(t, ""))
	model := regtest.ModelDir(t, 48<<10)
	clean, err := oras.OpenRemote(ctx, proxy.Host+"/models/check", oras.RemoteOptions{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	ok, failed := 0, 0
	deadline := time.Now().Add(4 * time.Minute)
	for seed := int64(1); seed <= faultRuns; seed++ {
		if time.Now().After(deadline) {
			t.Fatalf("fault runs took too long: %d done", seed-1)
		}
		repo := fmt.Sprintf("models/push%d", seed) // a fresh repository: nothing to skip
		tgt, _ := oras.OpenRemote(ctx, proxy.Host+"/"+repo, oras.RemoteOptions{PlainHTTP: true, RetryPolicy: fastRetry})
		f := &faults{rng: rand.New(rand.NewSource(seed)), rate: 0.25}
		f.install(proxy)
		desc, err := oras.Push(ctx, tgt, "v1", model, oras.PushOptions{Concurrency: 2})
		f.clear(proxy)
		if err != nil {
			failed++
			if err.Error() == "" {
				t.Fatalf("seed %d: empty error", seed)
			}
			continue
		}
		ok++
		check, _ := oras.OpenRemote(ctx, proxy.Host+"/"+repo, oras.RemoteOptions{PlainHTTP: true})
		got, err := oras.Resolve(ctx, check, "v1")
		if err != nil || got.Digest != desc.Digest {
			t.Fatalf("seed %d: pushed %s, registry has %v (%v)", seed, desc.Digest, got.Digest, err)
		}
		out := filepath.Join(t.TempDir(), "out")
		if _, err := oras.Pull(ctx, check, got, out, oras.PullOptions{}); err != nil {
			var e error = err
			if errors.Is(e, oras.ErrIntegrity) {
				t.Fatalf("seed %d: the registry holds corrupt content after a successful push: %v", seed, err)
			}
			t.Fatalf("seed %d: clean pull: %v", seed, err)
		}
		regtest.SameTree(t, model, out)
	}
	_ = clean
	t.Logf("push under faults: %d runs, %d succeeded, %d failed cleanly", faultRuns, ok, failed)
	if ok == 0 {
		t.Fatal("no push succeeded: the fault plan is too harsh to show recovery")
	}
}
