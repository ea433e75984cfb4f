package oras_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
)

// TestHostileRangeAnswers: a registry (or what stands in front of it) that
// answers the byte ranges of a big blob with something else than asked.
// A range answered 200 with the whole blob is TestParallelRangePull's
// "registry ignores Range" and TestWANPullWithoutRanges; a range with
// other bytes than its Content-Range says is "one range tampered"; a
// redirect to storage elsewhere never carrying the registry's credentials
// is TestWANPull's.
func TestHostileRangeAnswers(t *testing.T) {
	ctx := context.Background()
	t.Cleanup(oras.SetParallelMin(1 << 20))
	model := regtest.ModelDir(t, 4<<20)
	weights, err := os.ReadFile(filepath.Join(model, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	size := int64(len(weights))
	weightsPath := "/blobs/" + digest.FromBytes(weights).String()
	registry := regtest.Embedded(t, "")
	desc := push(t, openRemote(t, registry, "models/big", ""), model)
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: registry})

	for _, tc := range []struct {
		name string
		// answer answers a GET of the weights that carries a Range header
		// (from, to parsed from it).
		answer func(w http.ResponseWriter, r *http.Request, from, to int64)
		// refused: the pull fails, naming this; "": it succeeds.
		refused string
		// maxGETs bounds the GETs of the weights (0: no bound).
		maxGETs int64
		// stream: answer the GET without a Range (the one-stream
		// fallback) the same way.
		stream bool
	}{
		// An honest Content-Range for bytes one further than asked.
		{name: "a 206 with a Content-Range for other bytes", answer: func(w http.ResponseWriter, r *http.Request, from, to int64) {
			r.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", from+1, min(to+1, size-1)))
			rp.ServeHTTP(w, r)
		}, refused: "Content-Range"},
		// Only the bytes asked for are read; the rest is never written.
		{name: "a range body longer than asked", answer: func(w http.ResponseWriter, r *http.Request, from, to int64) {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, to, size))
			w.WriteHeader(http.StatusPartialContent)
			w.Write(weights[from:min(to+1+64<<10, size)])
			w.Write([]byte("and more bytes than the blob has"))
		}},
		{name: "a redirect loop", answer: func(w http.ResponseWriter, r *http.Request, from, to int64) {
			http.Redirect(w, r, r.URL.String(), http.StatusTemporaryRedirect)
		}, refused: "redirects", maxGETs: 200, stream: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var gets atomic.Int64
			front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, weightsPath) {
					rp.ServeHTTP(w, r)
					return
				}
				gets.Add(1)
				var from, to int64
				if _, err := fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-%d", &from, &to); err != nil && !tc.stream {
					rp.ServeHTTP(w, r)
					return
				}
				tc.answer(w, r, from, to)
			}))
			defer front.Close()
			out := filepath.Join(t.TempDir(), "out")
			_, err := oras.Pull(ctx, openRemote(t, strings.TrimPrefix(front.URL, "http://"), "models/big", ""), desc, out, oras.PullOptions{})
			t.Logf("%d GETs of the weights", gets.Load())
			if tc.maxGETs > 0 && gets.Load() > tc.maxGETs {
				t.Errorf("%d GETs of the weights, want at most %d", gets.Load(), tc.maxGETs)
			}
			if tc.refused == "" {
				if err != nil {
					t.Fatal(err)
				}
				regtest.SameTree(t, model, out)
				if gets.Load() < 4 {
					t.Fatalf("%d GETs of the weights: not fetched in ranges", gets.Load())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.refused) {
				t.Fatalf("err = %v, want a refusal naming %q", err, tc.refused)
			}
			assertNothingWritten(t, out)
		})
	}
}
