package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/modelattest/modelattest/events"
)

func TestReviewDecisions(t *testing.T) {
	f := newFixture(t)
	signed := f.push("models/llama", "v1", true)
	f.push("models/unsigned", "v1", false)
	f.push("warn/unsigned", "v1", false)
	f.push("audit/unsigned", "v1", false)
	var evbuf bytes.Buffer
	w := f.webhook(Options{Events: events.NewWriterSink(&evbuf)})
	cases := []struct {
		name     string
		verdict  string
		ref      string
		allowed  bool
		message  []string // in the denial
		warning  string
		audit    string
		pinnedTo string
	}{
		{name: "signed", verdict: "pass", ref: f.host + "/models/llama:v1", allowed: true, pinnedTo: f.host + "/models/llama:v1@" + signed.Digest.String()},
		{name: "unsigned enforce", verdict: "fail", ref: f.host + "/models/unsigned:v1", message: []string{f.host + "/models/unsigned@sha256:", "spec.volumes[0].image.reference", "policy rule 0 (enforce)", "signatures"}},
		{name: "no such tag", verdict: "error", ref: f.host + "/models/llama:v2", message: []string{"not found"}},
		{name: "warn", verdict: "fail", ref: f.host + "/warn/unsigned:v1", allowed: true, warning: "warn mode, not enforced"},
		{name: "audit", verdict: "fail", ref: f.host + "/audit/unsigned:v1", allowed: true, audit: `"mode":"audit","passed":false`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			evbuf.Reset()
			req := podRequest("ml", volumePod(c.ref, nil))
			req.UserInfo.Username = "alice"
			resp, _ := f.review(t, w, req, false)
			var ev events.Event
			if err := json.Unmarshal(evbuf.Bytes(), &ev); err != nil {
				t.Fatalf("not one decision event: %v\n%s", err, evbuf.String())
			}
			if d := ev.Data.Unmapped; d.Face != events.FaceAdmission || d.Verdict != c.verdict || d.Allowed != c.allowed ||
				d.CorrelationID != string(req.UID) || ev.Data.Actor == nil || ev.Data.Actor.User.Name != "alice" {
				t.Errorf("event %+v", ev.Data)
			}
			if resp.Allowed != c.allowed {
				t.Fatalf("allowed = %v, want %v: %+v", resp.Allowed, c.allowed, resp.Result)
			}
			for _, m := range c.message {
				if !strings.Contains(resp.Result.Message, m) {
					t.Errorf("denial %q does not say %q", resp.Result.Message, m)
				}
			}
			if c.warning != "" && !strings.Contains(strings.Join(resp.Warnings, "\n"), c.warning) {
				t.Errorf("warnings %q do not say %q", resp.Warnings, c.warning)
			}
			if c.audit != "" && !strings.Contains(resp.AuditAnnotations["models"], c.audit) {
				t.Errorf("audit annotations %q do not say %q", resp.AuditAnnotations, c.audit)
			}
			m, _ := f.review(t, w, podRequest("ml", volumePod(c.ref, nil)), true)
			if !m.Allowed {
				t.Fatalf("the mutating endpoint denied: %+v", m.Result)
			}
			if c.pinnedTo != "" {
				var ops []patchOp
				if err := json.Unmarshal(m.Patch, &ops); err != nil || len(ops) != 1 {
					t.Fatalf("patch %s: %v", m.Patch, err)
				}
				if ops[0].Path != "/spec/volumes/0/image/reference" || ops[0].Value != c.pinnedTo {
					t.Errorf("patch %+v, want %s pinned to %s", ops[0], ops[0].Path, c.pinnedTo)
				}
			}
		})
	}
}

func TestOutOfScopeMakesNoRegistryCall(t *testing.T) {
	f := newFixture(t)
	w := f.webhook(Options{})
	f.proxy.Reset()
	pod := map[string]any{"spec": map[string]any{
		"containers": []any{map[string]any{"name": "web", "image": "nginx:1.27"}, map[string]any{"name": "side", "image": f.host + "/other/app:v1"}},
		"volumes":    []any{map[string]any{"name": "data", "image": map[string]any{"reference": "docker.io/library/busybox:1"}}},
	}}
	resp, _ := f.review(t, w, podRequest("ml", pod), false)
	if !resp.Allowed || len(resp.Warnings) > 0 || resp.AuditAnnotations != nil {
		t.Fatalf("out-of-scope pod: %+v", resp)
	}
	if n := f.requests(); n != 0 {
		t.Fatalf("%d registry requests for a pod with no in-scope reference", n)
	}
}

func TestCacheAvoidsTheRegistryAndFollowsThePolicy(t *testing.T) {
	f := newFixture(t)
	f.push("models/llama", "v1", true)
	w := f.webhook(Options{})
	ref := f.host + "/models/llama:v1"
	if r, _ := f.review(t, w, podRequest("ml", volumePod(ref, nil)), false); !r.Allowed {
		t.Fatal(r.Result)
	}
	f.proxy.Reset()
	if r, _ := f.review(t, w, podRequest("ml", volumePod(ref, nil)), false); !r.Allowed {
		t.Fatal(r.Result)
	}
	if n := f.requests(); n != 0 {
		t.Fatalf("warm review made %d registry requests", n)
	}
	// A changed policy is a different cache key: verified again.
	f.writePolicy(testPolicy + "# changed\n")
	w.Reload(context.Background())
	if r, _ := f.review(t, w, podRequest("ml", volumePod(ref, nil)), false); !r.Allowed {
		t.Fatal(r.Result)
	}
	if n := f.requests(); n == 0 {
		t.Fatal("a new policy reused the decision made under the old one")
	}
	if hits := testutil.ToFloat64(w.metrics.cache.WithLabelValues("decision", "hit")); hits != 1 {
		t.Errorf("decision cache hits = %v, want 1", hits)
	}
}

func TestMutateModeRefusesUnpinned(t *testing.T) {
	f := newFixture(t)
	d := f.push("models/llama", "v1", true)
	w := f.webhook(Options{Mutate: true})
	ref := f.host + "/models/llama:v1"
	r, _ := f.review(t, w, podRequest("ml", volumePod(ref, nil)), false)
	if r.Allowed || !strings.Contains(r.Result.Message, "not pinned to a digest") {
		t.Fatalf("unpinned reference with --mutate: %+v", r.Result)
	}
	if r, _ := f.review(t, w, podRequest("ml", volumePod(ref+"@"+d.Digest.String(), nil)), false); !r.Allowed {
		t.Fatalf("pinned reference: %+v", r.Result)
	}
}

func TestRegistryDownIsDeniedWithinBudget(t *testing.T) {
	f := newFixture(t)
	f.push("models/llama", "v1", true)
	w := f.webhook(Options{Timeout: time.Second})
	f.proxy.SetDelay(func(*http.Request) time.Duration { return 5 * time.Second })
	start := time.Now()
	r, _ := f.review(t, w, podRequest("ml", volumePod(f.host+"/models/llama:v1", nil)), false)
	took := time.Since(start)
	if r.Allowed || !strings.Contains(r.Result.Message, "registry unreachable") {
		t.Fatalf("stalled registry: %+v", r.Result)
	}
	if took > 3*time.Second {
		t.Fatalf("denied after %s with a 1 s budget", took)
	}
	// A 5xx is unreachable too, and never becomes an allow.
	f.proxy.SetDelay(nil)
	f.proxy.SetFault(func(*http.Request) int { return http.StatusServiceUnavailable })
	w = f.webhook(Options{Timeout: 2 * time.Second})
	r, _ = f.review(t, w, podRequest("ml", volumePod(f.host+"/models/llama:v1", nil)), false)
	if r.Allowed || !strings.Contains(r.Result.Message, "registry unreachable") {
		t.Fatalf("registry answering 503: %+v", r.Result)
	}
}

func TestBrokenPolicyKeepsTheOld(t *testing.T) {
	f := newFixture(t)
	f.push("models/unsigned", "v1", false)
	w := f.webhook(Options{})
	f.writePolicy("version: 1\nmodels: [{match: ['**'], signatures: {signers: [nobody]}}]\n")
	w.Reload(context.Background())
	rec := httptest.NewRecorder()
	w.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "policy reload failed") || !strings.Contains(rec.Body.String(), "nobody") {
		t.Fatalf("/readyz after a broken policy: %d %s", rec.Code, rec.Body)
	}
	r, _ := f.review(t, w, podRequest("ml", volumePod(f.host+"/models/unsigned:v1", nil)), false)
	if r.Allowed || !strings.Contains(r.Result.Message, "policy rule 0") {
		t.Fatalf("the old policy no longer decides: %+v", r.Result)
	}
	f.writePolicy(testPolicy)
	w.Reload(context.Background())
	rec = httptest.NewRecorder()
	w.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if strings.Contains(rec.Body.String(), "failed") {
		t.Fatalf("/readyz still reports the failure after a good policy: %s", rec.Body)
	}
}

func TestExemptionOnlyWhenThePolicyNamesIt(t *testing.T) {
	f := newFixture(t)
	f.push("models/unsigned", "v1", false)
	w := f.webhook(Options{})
	ref := f.host + "/models/unsigned:v1"
	cases := []struct {
		name, ns, exemption string
		allowed             bool
		warning             string
	}{
		{"named", "ml", "incident-42", true, "exemption \"incident-42\""},
		{"not named", "ml", "whatever", false, "not named in the policy"},
		{"other namespace", "prod", "incident-42", false, "does not apply in namespace"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, _ := f.review(t, w, podRequest(c.ns, volumePod(ref, map[string]any{ExemptionAnnotation: c.exemption})), false)
			if r.Allowed != c.allowed {
				t.Fatalf("allowed = %v: %+v", r.Allowed, r.Result)
			}
			if !strings.Contains(strings.Join(r.Warnings, "\n"), c.warning) {
				t.Errorf("warnings %q do not say %q", r.Warnings, c.warning)
			}
			if c.allowed && r.AuditAnnotations["exemption"] != c.exemption {
				t.Errorf("exempted without an audit annotation: %v", r.AuditAnnotations)
			}
		})
	}
}
