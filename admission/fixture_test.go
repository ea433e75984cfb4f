package admission

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/modelattest/modelattest/events"
	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// fixture is a real embedded registry behind a counting proxy, a release
// key, and a policy file that trusts it.
type fixture struct {
	t      testing.TB
	dir    string
	host   string // the proxy: what references name
	proxy  *regtest.Proxy
	signer *referrers.Signer
	policy string
	// events receives the decision events of every webhook the fixture
	// starts (besides Options.Events): review checks them against each
	// answer.
	events *lockedBuffer
}

const testPolicy = `version: 1
trust:
  release: {key: release.pub}
models:
  - match: ["{{HOST}}/models/**"]
    signatures: {signers: [release]}
  - match: ["{{HOST}}/warn/**"]
    mode: warn
    signatures: {signers: [release]}
  - match: ["{{HOST}}/audit/**"]
    mode: audit
    signatures: {signers: [release]}
admission:
  scope: ["{{HOST}}/models/**", "{{HOST}}/warn/**", "{{HOST}}/audit/**"]
  exemptions:
    - name: incident-42
      namespaces: [ml]
      reason: INC-42 rollback of the ranking model
`

func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	reg := regtest.Embedded(t, "")
	p := regtest.NewProxy(t, reg)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(key.Public())
	if err := os.WriteFile(filepath.Join(dir, "release.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := referrers.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, dir: dir, host: p.Host, proxy: p, signer: s, policy: filepath.Join(dir, "policy.yaml"), events: &lockedBuffer{}}
	f.writePolicy(testPolicy)
	return f
}

func (f *fixture) writePolicy(body string) {
	f.t.Helper()
	tmp := f.policy + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.ReplaceAll(body, "{{HOST}}", f.host)), 0o644); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Rename(tmp, f.policy); err != nil {
		f.t.Fatal(err)
	}
}

// push pushes a small model as repo:tag (signed when sign is true) and
// returns its descriptor.
func (f *fixture) push(repo, tag string, sign bool) ocispec.Descriptor {
	f.t.Helper()
	ctx := context.Background()
	t, err := oras.OpenRemote(ctx, f.host+"/"+repo, oras.RemoteOptions{PlainHTTP: true})
	if err != nil {
		f.t.Fatal(err)
	}
	model := f.t.(interface{ TempDir() string }).TempDir()
	if err := os.WriteFile(filepath.Join(model, "model.gguf"), []byte(repo+":"+tag+time.Now().String()), 0o644); err != nil {
		f.t.Fatal(err)
	}
	desc, err := oras.Push(ctx, t, tag, model, oras.PushOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	if sign {
		if _, err := referrers.Sign(ctx, t, desc, f.signer, referrers.AttachOptions{}); err != nil {
			f.t.Fatal(err)
		}
	}
	return desc
}

// webhook starts a Webhook on the fixture's policy.
func (f *fixture) webhook(opts Options) *Webhook {
	f.t.Helper()
	opts.PolicyFile = f.policy
	opts.Remote.PlainHTTP = true
	if opts.Events != nil {
		opts.Events = events.Multi{opts.Events, events.NewWriterSink(f.events)}
	} else {
		opts.Events = events.NewWriterSink(f.events)
	}
	w, err := New(context.Background(), opts)
	if err != nil {
		f.t.Fatal(err)
	}
	return w
}

// podRequest is an AdmissionRequest creating a Pod in namespace.
func podRequest(namespace string, pod map[string]any) *admissionv1.AdmissionRequest {
	return objectRequest("", "v1", "Pod", namespace, pod)
}

func objectRequest(group, version, kind, namespace string, obj map[string]any) *admissionv1.AdmissionRequest {
	raw, _ := json.Marshal(obj)
	return &admissionv1.AdmissionRequest{
		UID: types.UID(fmt.Sprintf("uid-%d", time.Now().UnixNano())), Kind: metav1.GroupVersionKind{Group: group, Version: version, Kind: kind},
		Namespace: namespace, Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw},
	}
}

// volumePod is a pod mounting ref as an image volume, plus an nginx
// container that is out of scope.
func volumePod(ref string, annotations map[string]any) map[string]any {
	return map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": "p", "annotations": annotations},
		"spec": map[string]any{
			"containers": []any{map[string]any{"name": "c", "image": "nginx:1.27"}},
			"volumes":    []any{map[string]any{"name": "model", "image": map[string]any{"reference": ref}}},
		},
	}
}

// requests is how many requests reached the registry.
func (f *fixture) requests() int {
	n := 0
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"} {
		n += f.proxy.Count(m, "/")
	}
	return n
}

// lockedBuffer is a bytes.Buffer safe for a sink and a test to share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// take returns what was written since the last take.
func (l *lockedBuffer) take() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := append([]byte(nil), l.b.Bytes()...)
	l.b.Reset()
	return out
}

// review asks w about req, and for the validating endpoint checks the
// decision events it emitted against the answer: each is schema-valid,
// carries the request UID, and says allowed exactly when the answer does;
// a denial's message holds the reason of at least one event. It returns
// the answer and the events (the wire form).
func (f *fixture) review(t testing.TB, w *Webhook, req *admissionv1.AdmissionRequest, mutate bool) (*admissionv1.AdmissionResponse, []map[string]any) {
	t.Helper()
	f.events.take()
	resp := w.Review(context.Background(), req, mutate)
	raw := f.events.take()
	if mutate {
		if len(raw) != 0 {
			t.Errorf("the mutating endpoint emitted decision events:\n%s", raw)
		}
		return resp, nil
	}
	evs := regtest.DecisionEvents(t, raw)
	explained := resp.Allowed
	for _, e := range evs {
		u := e["data"].(map[string]any)["unmapped"].(map[string]any)
		if u["correlation_id"] != string(req.UID) {
			t.Errorf("event correlation id %v, want the request UID %s", u["correlation_id"], req.UID)
		}
		if u["allowed"] != resp.Allowed {
			t.Errorf("the answer says allowed=%v, an event says allowed=%v: %+v\n%s", resp.Allowed, u["allowed"], resp.Result, e["data"].(map[string]any)["message"])
		}
		if !resp.Allowed {
			for _, r := range eventReasons(u) {
				explained = explained || strings.Contains(resp.Result.Message, r)
			}
		}
	}
	if !explained {
		t.Errorf("denied (%s), and no event gives a reason the answer gives:\n%s", resp.Result.Message, raw)
	}
	return resp, evs
}

// eventReasons lists an event's error and failed requirements' reasons.
func eventReasons(u map[string]any) []string {
	var out []string
	if e, _ := u["error"].(string); e != "" {
		out = append(out, e)
	}
	for _, r := range u["requirements"].([]any) {
		r := r.(map[string]any)
		if why, _ := r["reason"].(string); r["outcome"] == "failed" && why != "" {
			out = append(out, why)
		}
	}
	return out
}
