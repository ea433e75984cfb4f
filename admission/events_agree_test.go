package admission

import (
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// twoVolumePod mounts two models as image volumes.
func twoVolumePod(a, b string) map[string]any {
	return map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": "p"},
		"spec": map[string]any{
			"containers": []any{map[string]any{"name": "c", "image": "nginx:1.27"}},
			"volumes": []any{
				map[string]any{"name": "a", "image": map[string]any{"reference": a}},
				map[string]any{"name": "b", "image": map[string]any{"reference": b}},
			},
		},
	}
}

// TestEventsAgreeWithTheAnswer: on every path where the answer is not the
// verdict of one model alone, each decision event says what the API
// server was told (f.review checks allowed, the reason, the UID and the
// schema). On the code before, a verified but unpinned model refused under
// --mutate, and a verified model refused with the other model of its
// request, were reported allowed; an unreadable object had no event.
func TestEventsAgreeWithTheAnswer(t *testing.T) {
	f := newFixture(t)
	signed := f.push("models/llama", "v1", true)
	f.push("models/unsigned", "v1", false)
	f.push("warn/unsigned", "v1", false)
	pinned := f.host + "/models/llama:v1@" + signed.Digest.String()
	plain := f.webhook(Options{})
	mutating := f.webhook(Options{Mutate: true})
	unreadable := podRequest("ml", nil)
	unreadable.Object = runtime.RawExtension{Raw: []byte(`{"spec": `)}

	cases := []struct {
		name    string
		w       *Webhook
		req     *admissionv1.AdmissionRequest
		allowed bool
		events  int
		reason  string // in the answer, which gives a reason of every event
	}{
		{"unpinned under mutate", mutating, podRequest("ml", volumePod(f.host+"/models/llama:v1", nil)), false, 1, "not pinned to a digest"},
		{"pinned under mutate", mutating, podRequest("ml", volumePod(pinned, nil)), true, 1, ""},
		{"verified beside unsigned", plain, podRequest("ml", twoVolumePod(f.host+"/models/llama:v1", f.host+"/models/unsigned:v1")), false, 2, "policy rule 0 (enforce)"},
		{"warn beside unsigned", plain, podRequest("ml", twoVolumePod(f.host+"/warn/unsigned:v1", f.host+"/models/unsigned:v1")), false, 2, "policy rule 0 (enforce)"},
		{"warn beside verified", plain, podRequest("ml", twoVolumePod(f.host+"/warn/unsigned:v1", f.host+"/models/llama:v1")), true, 2, ""},
		{"unparsable reference", plain, podRequest("ml", volumePod(f.host+"/models/Bad Name:v1", nil)), false, 1, ""},
		{"unreadable object", plain, unreadable, false, 1, "decode Pod"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, evs := f.review(t, c.w, c.req, false)
			if resp.Allowed != c.allowed {
				t.Fatalf("allowed = %v, want %v: %+v", resp.Allowed, c.allowed, resp.Result)
			}
			if len(evs) != c.events {
				t.Fatalf("%d events, want %d", len(evs), c.events)
			}
			if c.reason == "" {
				return
			}
			if !strings.Contains(resp.Result.Message, c.reason) {
				t.Errorf("answer %q does not say %q", resp.Result.Message, c.reason)
			}
			for _, e := range evs {
				u := e["data"].(map[string]any)["unmapped"].(map[string]any)
				if u["verdict"] == "pass" {
					t.Errorf("a refused model's event says verdict pass: %v", u)
				}
				given := false
				for _, r := range eventReasons(u) {
					given = given || strings.Contains(resp.Result.Message, r)
				}
				if !given {
					t.Errorf("no reason of the event %q is in the answer %q", eventReasons(u), resp.Result.Message)
				}
			}
		})
	}
}
