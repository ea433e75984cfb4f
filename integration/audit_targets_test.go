package integration

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelattest/modelattest/audit"
	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// TestAuditTargets: a registry host is audited through its catalog; a
// --repositories file names repositories explicitly; an OCI layout is a
// target too.
func TestAuditTargets(t *testing.T) {
	ctx := context.Background()
	host := regtest.Embedded(t, "")
	w := newAuditWorld(t, host)
	other, _ := signedRepo(t, host, 2)
	p, err := referrers.LoadPolicy(ctx, w.policy)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("catalog", func(t *testing.T) {
		rep, err := audit.Run(ctx, []string{host}, audit.Options{Policy: p, Remote: oras.RemoteOptions{PlainHTTP: true}})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Summary.Repositories != 2 || rep.Summary.Models != 6 || len(rep.Problems) != 0 {
			t.Fatalf("%+v %v", rep.Summary, rep.Problems)
		}
	})
	t.Run("repositories file", func(t *testing.T) {
		list := filepath.Join(t.TempDir(), "repos.txt")
		os.WriteFile(list, []byte("# the two model repositories\n"+w.repo+"\n\n"+other+"\n"), 0o644)
		out := filepath.Join(t.TempDir(), "evidence")
		res, code := maCode(t, "audit", "--plain-http", "--policy", w.policy, "--output", out, "--repositories", list)
		if code != 3 || !strings.Contains(res, "Audited 7 tags, 6 models in 2 repositories") {
			t.Fatalf("exit %d\n%s", code, res)
		}
		os.WriteFile(list, []byte("not a repository\n"), 0o644)
		if res, code := maCode(t, "audit", "--plain-http", "--policy", w.policy, "--output", filepath.Join(t.TempDir(), "e"), "--repositories", list); code != 2 || !strings.Contains(res, "line 1") {
			t.Errorf("bad file: exit %d\n%s", code, res)
		}
	})
	t.Run("oci layout", func(t *testing.T) {
		keys := keyDir(t)
		policy := writeKeyPolicy(t, keys, false)
		layout := filepath.Join(t.TempDir(), "oci")
		ma(t, "push", "--no-progress", "--oci-layout", layout+":v1", regtest.ModelDir(t, 512))
		ma(t, "sign", "--oci-layout", "--key", filepath.Join(keys, "cosign.key"), layout+":v1")
		ma(t, "attest", "--oci-layout", "--key", filepath.Join(keys, "cosign.key"), "--type", "slsaprovenance1", "--predicate", filepath.Join(keys, "provenance.json"), layout+":v1")
		ma(t, "push", "--no-progress", "--oci-layout", layout+":unsigned", regtest.ModelDir(t, 256))
		out := filepath.Join(t.TempDir(), "evidence")
		res, code := maCode(t, "audit", "--oci-layout", "--policy", policy, "--output", out, layout)
		if code != 3 {
			t.Fatalf("exit %d\n%s", code, res)
		}
		_, models := readReport(t, out)
		got := map[string]string{}
		for _, m := range models {
			got[strings.Join(m.Tags, ",")] = m.Verdict
		}
		if len(models) != 2 || got["v1"] != "pass" || got["unsigned"] != "fail" {
			t.Fatalf("%v\n%s", got, res)
		}
	})
}

// TestAuditEtiquette: a 429 with Retry-After: 1 is waited out and the
// audit completes; --max-rps spaces requests so that no second holds more
// than the rate allows.
func TestAuditEtiquette(t *testing.T) {
	ctx := context.Background()
	host := regtest.Embedded(t, "")
	repo, p := signedRepo(t, host, 4)
	proxy := regtest.NewProxy(t, host)
	repo = strings.Replace(repo, host, proxy.Host, 1)
	var mu sync.Mutex
	var times, tagLists []time.Time
	proxy.SetFault(func(r *http.Request) int {
		mu.Lock()
		defer mu.Unlock()
		times = append(times, time.Now())
		if strings.HasSuffix(r.URL.Path, "/tags/list") {
			tagLists = append(tagLists, time.Now())
			if len(tagLists) == 1 {
				return http.StatusTooManyRequests
			}
		}
		return 0
	})
	const rps = 10
	rep, err := audit.Run(ctx, []string{repo}, audit.Options{Policy: p, Remote: oras.RemoteOptions{PlainHTTP: true}, MaxRPS: rps, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Summary.Passed != 4 || len(rep.Problems) != 0 {
		t.Fatalf("%+v %v", rep.Summary, rep.Problems)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(tagLists) != 2 || tagLists[1].Sub(tagLists[0]) < 900*time.Millisecond {
		t.Errorf("tag list attempts at %v: the 429's Retry-After was not waited out", tagLists)
	}
	for i := range times {
		n := 0
		for j := i; j < len(times) && times[j].Sub(times[i]) < time.Second; j++ {
			n++
		}
		if n > rps+1 {
			t.Fatalf("%d requests within one second, over --max-rps %d", n, rps)
		}
	}
	t.Logf("%d requests, %d counted by the audit", len(times), rep.Requests)
}
