package integration

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// BenchmarkAdmissionLoad posts AdmissionReviews straight to the webhook
// (the modelattest binary, TLS, loopback) at a fixed rate, open loop:
// warm (cache on) at 200 req/s for 30 s, then uncached (--no-cache) at
// 20 req/s for 30 s across 50 models, each signed, with SLSA provenance and
// a model-signing statement, on the embedded registry (which shares the
// machine). It reports p50/p99 latency, errors and the webhook's RSS
// growth from the 10th second to the end. Bounded: about 90 s per run.
func BenchmarkAdmissionLoad(b *testing.B) {
	const models = 50
	dir := b.TempDir()
	host := regtest.Embedded(b, "")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(key.Public())
	if err := os.WriteFile(filepath.Join(dir, "release.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		b.Fatal(err)
	}
	s, _ := referrers.NewSigner(key)
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte(fmt.Sprintf(`version: 1
trust:
  release: {key: release.pub}
models:
  - match: ["%s/models/**"]
    signatures: {signers: [release]}
    attestations:
      - predicateType: https://slsa.dev/provenance/v1
        signers: [release]
        slsa: {builderIDs: ["https://ci.example/trainer@v1"]}
      - predicateType: https://model_signing/signature/v1.0
        signers: [release]
`, host)), 0o644); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	pred, err := referrers.Provenance{BuilderID: "https://ci.example/trainer@v1", BuildType: "https://ci.example/train/v1",
		ExternalParameters: map[string]any{"recipe": "r.yaml"}}.Predicate()
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < models; i++ {
		repo := fmt.Sprintf("models/m%02d", i)
		desc := pushAdmissionModel(b, host, repo, "v1", s)
		t, _ := oras.OpenRemote(ctx, host+"/"+repo, oras.RemoteOptions{PlainHTTP: true})
		if _, err := referrers.Attest(ctx, t, desc, s, referrers.PredicateSLSAProvenance, pred, referrers.AttachOptions{}); err != nil {
			b.Fatal(err)
		}
		if _, err := referrers.AttestModelSigning(ctx, t, desc, s, repo, referrers.AttachOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	tlsDir := filepath.Join(dir, "tls")
	if out, err := exec.Command(modelattest, "admission", "certs", "--out", tlsDir, "--ip", "127.0.0.1").CombinedOutput(); err != nil {
		b.Fatalf("%v: %s", err, out)
	}
	for n := 0; n < b.N; n++ {
		for _, phase := range []struct {
			name  string
			rate  int
			extra []string
		}{
			{"warm", 200, nil},
			{"uncached", 20, []string{"--no-cache"}},
		} {
			addr := regtest.FreePort(b)
			cmd := exec.Command(modelattest, append([]string{"admission", "serve", "--address", addr, "--policy", policy, "--plain-http",
				"--tls-cert", filepath.Join(tlsDir, "tls.crt"), "--tls-key", filepath.Join(tlsDir, "tls.key"), "--events", ""}, phase.extra...)...)
			cmd.Env = append(os.Environ(), "HOME="+dir, "DOCKER_CONFIG="+dir)
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			r := loadPhase(b, cmd.Process.Pid, addr, host, models, phase.rate, 30*time.Second)
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			b.ReportMetric(r.p50, phase.name+"-p50-ms")
			b.ReportMetric(r.p99, phase.name+"-p99-ms")
			b.ReportMetric(float64(r.errors), phase.name+"-errors")
			b.ReportMetric(r.rssGrowth, phase.name+"-rss-growth-%")
			b.Logf("%s: %d requests at %d/s, p50 %.2f ms, p99 %.2f ms, max %.2f ms, %d errors, RSS %.1f MB at 10 s, peak %.1f MB after (%+.1f %%)",
				phase.name, r.n, phase.rate, r.p50, r.p99, r.max, r.errors, r.rss10, r.rssPeak, r.rssGrowth)
		}
	}
}

type loadResult struct {
	n, errors                 int
	p50, p99, max             float64
	rss10, rssPeak, rssGrowth float64
}

func rssMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

func loadPhase(b *testing.B, pid int, addr, host string, models, rate int, d time.Duration) loadResult {
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // loopback test
	for deadline := time.Now().Add(30 * time.Second); ; {
		if resp, err := hc.Get("https://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("webhook not ready")
		}
		time.Sleep(100 * time.Millisecond)
	}
	bodies := make([][]byte, models)
	for i := range bodies {
		pod := map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "p"},
			"spec": map[string]any{"containers": []any{map[string]any{"name": "c", "image": "nginx"}},
				"volumes": []any{map[string]any{"name": "m", "image": map[string]any{"reference": fmt.Sprintf("%s/models/m%02d:v1", host, i)}}}}}
		raw, _ := json.Marshal(pod)
		bodies[i], _ = json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
			"request": map[string]any{"uid": fmt.Sprint(i), "kind": map[string]any{"group": "", "version": "v1", "kind": "Pod"},
				"resource": map[string]any{"group": "", "version": "v1", "resource": "pods"}, "namespace": "ml", "operation": "CREATE",
				"userInfo": map[string]any{"username": "bench"}, "object": json.RawMessage(raw)}})
	}
	// Warm the cache (and the connections) with one review per model.
	post := func(i int) (time.Duration, bool) {
		start := time.Now()
		resp, err := hc.Post("https://"+addr+"/validate", "application/json", bytes.NewReader(bodies[i%models]))
		if err != nil {
			return time.Since(start), false
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		return took, resp.StatusCode == 200 && bytes.Contains(body, []byte(`"allowed":true`))
	}
	for i := 0; i < models; i++ {
		if _, ok := post(i); !ok {
			b.Fatalf("model %d not admitted before the run", i)
		}
	}
	var mu sync.Mutex
	var lat []float64
	var errs atomic.Int64
	var wg sync.WaitGroup
	res := loadResult{}
	start := time.Now()
	tick := time.NewTicker(time.Second / time.Duration(rate))
	sample := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	defer sample.Stop()
	i := 0
	for time.Since(start) < d {
		select {
		case <-tick.C:
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				took, ok := post(i)
				if !ok {
					errs.Add(1)
				}
				mu.Lock()
				lat = append(lat, float64(took.Microseconds())/1000)
				mu.Unlock()
			}(i)
			i++
		case <-sample.C:
			rss := rssMB(pid)
			el := time.Since(start)
			if el >= 10*time.Second && res.rss10 == 0 {
				res.rss10 = rss
			}
			if res.rss10 != 0 && rss > res.rssPeak {
				res.rssPeak = rss
			}
		}
	}
	wg.Wait()
	sort.Float64s(lat)
	res.n, res.errors = len(lat), int(errs.Load())
	if len(lat) > 0 {
		res.p50, res.p99, res.max = lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	}
	if res.rss10 > 0 {
		res.rssGrowth = (res.rssPeak - res.rss10) / res.rss10 * 100
	}
	return res
}
