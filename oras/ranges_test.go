package oras_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
)

// A big blob (32 MiB or more) is fetched in parallel byte ranges; these
// tests hold that path to the same rules as the single stream, on a 4 MiB
// blob with the threshold lowered to 1 MiB.
func TestParallelRangePull(t *testing.T) {
	ctx := context.Background()
	t.Cleanup(oras.SetParallelMin(1 << 20))
	model := regtest.ModelDir(t, 4<<20)
	weights, _ := os.ReadFile(filepath.Join(model, "model.safetensors"))
	weightsPath := "/blobs/" + digest.FromBytes(weights).String()
	isWeights := func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, weightsPath) }

	tests := []struct {
		name      string
		fault     func(r *http.Request) int
		tamper    func(r *http.Request, b []byte) []byte
		noRanges  bool
		wantErr   error
		minRanges int
	}{
		{name: "ranges", minRanges: 4},
		{name: "registry ignores Range", noRanges: true},
		{name: "ranges throttled, then served", minRanges: 4, fault: func() func(r *http.Request) int {
			var mu sync.Mutex
			n := 0
			return func(r *http.Request) int {
				mu.Lock()
				defer mu.Unlock()
				if isWeights(r) && r.Header.Get("Range") != "" {
					if n++; n <= 3 { // 429 with Retry-After: 1, waited out
						return http.StatusTooManyRequests
					}
				}
				return 0
			}
		}()},
		{name: "one range tampered", wantErr: oras.ErrIntegrity, tamper: func(r *http.Request, b []byte) []byte {
			if isWeights(r) && strings.HasPrefix(r.Header.Get("Range"), "bytes=0-") {
				b[100] ^= 1
			}
			return b
		}},
		{name: "one range short", wantErr: oras.ErrIntegrity, tamper: func(r *http.Request, b []byte) []byte {
			if isWeights(r) && r.Header.Get("Range") != "" && !strings.HasPrefix(r.Header.Get("Range"), "bytes=0-") {
				return b[:len(b)-10]
			}
			return b
		}},
		{name: "one range refused", wantErr: errors.New("any"), fault: func(r *http.Request) int {
			if isWeights(r) && strings.HasPrefix(r.Header.Get("Range"), "bytes=0-") {
				return http.StatusForbidden
			}
			return 0
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proxy := regtest.NewProxy(t, regtest.Embedded(t, ""))
			tgt := openRemote(t, proxy.Host, "models/big", "")
			desc := push(t, tgt, model)
			proxy.SetTamper(tt.tamper)
			fault := tt.fault
			if tt.noRanges {
				fault = func(r *http.Request) int { r.Header.Del("Range"); return 0 }
			}
			proxy.SetFault(fault)
			proxy.Reset()
			out := filepath.Join(t.TempDir(), "out")
			_, err := oras.Pull(ctx, tgt, desc, out, oras.PullOptions{})
			if tt.wantErr != nil {
				if err == nil {
					t.Fatal("pull succeeded")
				}
				if errors.Is(tt.wantErr, oras.ErrIntegrity) && !errors.Is(err, oras.ErrIntegrity) {
					t.Fatalf("err = %v, want ErrIntegrity", err)
				}
				assertNothingWritten(t, out)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			regtest.SameTree(t, model, out)
			if n := proxy.Count("GET", "/v2/models/big"+weightsPath); n < tt.minRanges {
				t.Fatalf("%d GETs of the weights, want at least %d", n, tt.minRanges)
			}
		})
	}
}
