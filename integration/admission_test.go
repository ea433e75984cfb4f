package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/modelattest/modelattest/admission"
	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

const admissionPolicy = `version: 1
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
  - match: ["{{AUTH}}/models/**"]
    signatures: {signers: [release]}
admission:
  scope: ["{{HOST}}/models/**", "{{HOST}}/warn/**", "{{HOST}}/audit/**", "{{AUTH}}/models/**"]
`

// pushAdmissionModel pushes a small model as host/repo:tag, signed by s when s is
// not nil.
func pushAdmissionModel(t testing.TB, host, repo, tag string, s *referrers.Signer) ocispec.Descriptor {
	t.Helper()
	return pushAdmissionModelWith(t, oras.RemoteOptions{PlainHTTP: true}, host, repo, tag, s)
}

// pushAdmissionModelWith is pushAdmissionModel with the given remote
// options (credentials).
func pushAdmissionModelWith(t testing.TB, o oras.RemoteOptions, host, repo, tag string, s *referrers.Signer) ocispec.Descriptor {
	t.Helper()
	ctx := context.Background()
	tg, err := oras.OpenRemote(ctx, host+"/"+repo, o)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "model.gguf"), []byte(fmt.Sprintf("%s:%s %d", repo, tag, time.Now().UnixNano())), 0o644); err != nil {
		t.Fatal(err)
	}
	desc, err := oras.Push(ctx, tg, tag, dir, oras.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s != nil {
		if _, err := referrers.Sign(ctx, tg, desc, s, referrers.AttachOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return desc
}

func requests(p *regtest.Proxy) int {
	n := 0
	for _, m := range []string{"GET", "HEAD", "POST", "PUT"} {
		n += p.Count(m, "/")
	}
	return n
}

func imagePod(name, ref string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: ml}
spec:
  containers: [{name: c, image: "nginx:1.27"}]
  volumes: [{name: model, image: {reference: "%s"}}]
`, name, ref)
}

func TestAdmissionAgainstAPIServer(t *testing.T) {
	c := startCluster(t)
	proxy := regtest.NewProxy(t, regtest.Embedded(t, ""))
	host := proxy.Host
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(key.Public())
	if err := os.WriteFile(filepath.Join(dir, "release.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := referrers.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	// A registry that wants a login (bearer tokens from a token service,
	// as Harbor does); the webhook's own Docker config is empty, so only
	// the workload's pull secrets open it.
	ts := regtest.NewTokenService(t, robot, robotPassword)
	authHost := regtest.Distribution(t, ts.RegistryConfig())
	policy := filepath.Join(dir, "policy.yaml")
	writeAdmissionPolicy := func(body string) {
		body = strings.ReplaceAll(strings.ReplaceAll(body, "{{HOST}}", host), "{{AUTH}}", authHost)
		if err := os.WriteFile(policy+".tmp", []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(policy+".tmp", policy); err != nil {
			t.Fatal(err)
		}
	}
	writeAdmissionPolicy(admissionPolicy)
	signed := pushAdmissionModel(t, host, "models/llama", "v1", s)
	pushAdmissionModel(t, host, "models/unsigned", "v1", nil)
	pushAdmissionModel(t, host, "models/retagged", "v1", s)
	pushAdmissionModel(t, host, "models/retagged", "v1", nil) // the tag moves to an unsigned model
	pushAdmissionModel(t, host, "models/fresh", "v1", s)
	pushAdmissionModel(t, host, "warn/unsigned", "v1", nil)
	pushAdmissionModel(t, host, "audit/unsigned", "v1", nil)
	login := oras.RemoteOptions{PlainHTTP: true, Username: robot, Password: robotPassword}
	private := pushAdmissionModelWith(t, login, authHost, "models/private", "v1", s)
	privateSA := pushAdmissionModelWith(t, login, authHost, "models/private-sa", "v1", s)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}

	// The webhook, as a process, with a certificate for 127.0.0.1.
	tlsDir := filepath.Join(dir, "tls")
	ma(t, "admission", "certs", "--out", tlsDir, "--ip", "127.0.0.1")
	addr := regtest.FreePort(t)
	logPath := filepath.Join(dir, "webhook.log")
	logf, _ := os.Create(logPath)
	eventsf, _ := os.Create(filepath.Join(dir, "events.jsonl"))
	wh := exec.Command(modelattest, "admission", "serve", "--address", addr, "--tls-cert", filepath.Join(tlsDir, "tls.crt"),
		"--tls-key", filepath.Join(tlsDir, "tls.key"), "--policy", policy, "--mutate", "--timeout", "3s", "--plain-http",
		"--kubeconfig", c.kubeconfig, "--reload-interval", "200ms")
	wh.Stdout, wh.Stderr = eventsf, logf
	wh.Env = append(os.Environ(), "HOME="+dir, "DOCKER_CONFIG="+dir)
	if err := wh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = wh.Process.Kill(); _ = wh.Wait() })
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // test only
	get := func(path string) (int, string) {
		resp, err := hc.Get("https://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		if code, _ := get("/readyz"); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("webhook not ready:\n%s", log)
		}
		time.Sleep(200 * time.Millisecond)
	}
	manifests := ma(t, "admission", "manifests", "--policy", policy, "--mutate", "--url", "https://"+addr, "--ca-bundle", filepath.Join(tlsDir, "ca.crt"))
	c.kubectl(t, manifests, "apply", "-f", "-")
	c.kubectl(t, "", "create", "namespace", "ml")
	c.kubectl(t, "", "label", "namespace", "ml", "modelattest.dev/enforce=true")
	c.kubectl(t, "", "-n", "ml", "create", "serviceaccount", "default")

	forbidden := func(t *testing.T, manifest string, want ...string) {
		t.Helper()
		out, err := c.kubectlErr(manifest, "apply", "-f", "-")
		if err == nil {
			t.Fatalf("admitted:\n%s", out)
		}
		for _, w := range append([]string{"denied the request"}, want...) {
			if !strings.Contains(out, w) {
				t.Errorf("kubectl output does not say %q:\n%s", w, out)
			}
		}
	}

	t.Run("signed image volume is created and pinned", func(t *testing.T) {
		c.kubectl(t, imagePod("signed", host+"/models/llama:v1"), "apply", "-f", "-")
		got := c.kubectl(t, "", "-n", "ml", "get", "pod", "signed", "-o", "jsonpath={.spec.volumes[0].image.reference}")
		if want := host + "/models/llama:v1@" + signed.Digest.String(); got != want {
			t.Errorf("reference %q, want %q", got, want)
		}
	})
	t.Run("unsigned is forbidden with the reason", func(t *testing.T) {
		forbidden(t, imagePod("unsigned", host+"/models/unsigned:v1"), "Forbidden", host+"/models/unsigned@sha256:", "policy rule 0 (enforce)", "signatures")
	})
	t.Run("re-tagged is forbidden", func(t *testing.T) {
		forbidden(t, imagePod("retagged", host+"/models/retagged:v1"), "policy rule 0 (enforce)")
	})
	t.Run("workloads with an unsigned model are refused at apply", func(t *testing.T) {
		tmpl := fmt.Sprintf(`metadata: {labels: {app: m}}
      spec:
        restartPolicy: %%s
        containers: [{name: c, image: "nginx:1.27"}]
        volumes: [{name: model, image: {reference: "%s/models/unsigned:v1"}}]`, host)
		forbidden(t, fmt.Sprintf("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: ml}\nspec:\n  selector: {matchLabels: {app: m}}\n  template:\n    "+
			strings.ReplaceAll(tmpl, "\n      ", "\n    ")+"\n", "Always"), "policy rule 0")
		forbidden(t, fmt.Sprintf("apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: s, namespace: ml}\nspec:\n  serviceName: s\n  selector: {matchLabels: {app: m}}\n  template:\n    "+
			strings.ReplaceAll(tmpl, "\n      ", "\n    ")+"\n", "Always"), "policy rule 0")
		forbidden(t, fmt.Sprintf("apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: cj, namespace: ml}\nspec:\n  schedule: '@daily'\n  jobTemplate:\n    spec:\n      template:\n        "+
			strings.ReplaceAll(tmpl, "\n      ", "\n        ")+"\n", "Never"), "policy rule 0")
	})
	t.Run("InferenceService", func(t *testing.T) {
		c.kubectl(t, inferenceServiceCRD, "apply", "-f", "-")
		c.kubectl(t, "", "wait", "--for", "condition=established", "--timeout", "60s", "crd/inferenceservices.serving.kserve.io")
		isvc := "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: %s, namespace: ml}\nspec:\n  predictor:\n    model:\n      modelFormat: {name: huggingface}\n      storageUri: oci://%s\n"
		forbidden(t, fmt.Sprintf(isvc, "bad", host+"/models/unsigned:v1"), "policy rule 0")
		var out string
		for i := 0; i < 20; i++ { // the new resource reaches the webhook's discovery shortly after it is established
			if out, err = c.kubectlErr(fmt.Sprintf(isvc, "good", host+"/models/llama:v1"), "apply", "-f", "-"); err == nil {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("signed InferenceService refused: %s", out)
		}
		got := c.kubectl(t, "", "-n", "ml", "get", "inferenceservice", "good", "-o", "jsonpath={.spec.predictor.model.storageUri}")
		if want := "oci://" + host + "/models/llama:v1@" + signed.Digest.String(); got != want {
			t.Errorf("storageUri %q, want %q", got, want)
		}
	})
	t.Run("warn mode shows the warning and creates", func(t *testing.T) {
		out := c.kubectl(t, imagePod("warned", host+"/warn/unsigned:v1"), "apply", "-f", "-")
		if !strings.Contains(out, "Warning:") || !strings.Contains(out, "warn mode, not enforced") {
			t.Errorf("no warning:\n%s", out)
		}
		c.kubectl(t, "", "-n", "ml", "get", "pod", "warned")
	})
	t.Run("audit mode leaves an audit annotation", func(t *testing.T) {
		c.kubectl(t, imagePod("audited", host+"/audit/unsigned:v1"), "apply", "-f", "-")
		var log []byte
		for i := 0; i < 20; i++ {
			log, _ = os.ReadFile(c.auditLog)
			if strings.Contains(string(log), "validate.modelattest.dev/models") && strings.Contains(string(log), `\"mode\":\"audit\"`) {
				return
			}
			time.Sleep(250 * time.Millisecond)
		}
		t.Errorf("no audit annotation in the API server's audit log")
	})
	t.Run("pull secrets of the pod and of the service account open a login registry", func(t *testing.T) {
		ref := authHost + "/models/private:v1"
		// Without credentials first: a refusal is never cached, a pass is.
		forbidden(t, imagePod("private-none", ref), "Forbidden", authHost, "credentials")
		c.kubectl(t, "", "-n", "ml", "create", "secret", "docker-registry", "regcred", "--docker-server="+authHost,
			"--docker-username="+robot, "--docker-password="+robotPassword)
		if typ := c.kubectl(t, "", "-n", "ml", "get", "secret", "regcred", "-o", "jsonpath={.type}"); typ != "kubernetes.io/dockerconfigjson" {
			t.Fatalf("secret type %q", typ)
		}
		withSecret := strings.Replace(imagePod("private-secret", ref), "spec:\n", "spec:\n  imagePullSecrets: [{name: regcred}]\n", 1)
		c.kubectl(t, withSecret, "apply", "-f", "-")
		got := c.kubectl(t, "", "-n", "ml", "get", "pod", "private-secret", "-o", "jsonpath={.spec.volumes[0].image.reference}")
		if want := ref + "@" + private.Digest.String(); got != want {
			t.Errorf("reference %q, want %q", got, want)
		}

		// A pod template carries no service account secrets (the API
		// server adds them to pods only): the webhook reads the service
		// account's imagePullSecrets itself.
		deployment := func(name, sa string) string {
			return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %s, namespace: ml}
spec:
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      serviceAccountName: %s
      containers: [{name: c, image: "nginx:1.27"}]
      volumes: [{name: model, image: {reference: "%s/models/private-sa:v1"}}]
`, name, sa, authHost)
		}
		forbidden(t, deployment("private-default-sa", "default"), "Forbidden", "credentials")
		c.kubectl(t, "", "-n", "ml", "create", "secret", "docker-registry", "regcred-sa", "--docker-server="+authHost,
			"--docker-username="+robot, "--docker-password="+robotPassword)
		c.kubectl(t, "", "-n", "ml", "create", "serviceaccount", "runner")
		c.kubectl(t, "", "-n", "ml", "patch", "serviceaccount", "runner", "-p", `{"imagePullSecrets": [{"name": "regcred-sa"}]}`)
		c.kubectl(t, deployment("private-runner-sa", "runner"), "apply", "-f", "-")
		got = c.kubectl(t, "", "-n", "ml", "get", "deployment", "private-runner-sa", "-o", "jsonpath={.spec.template.spec.volumes[0].image.reference}")
		if want := authHost + "/models/private-sa:v1@" + privateSA.Digest.String(); got != want {
			t.Errorf("reference %q, want %q", got, want)
		}
		if len(ts.Issued()) == 0 {
			t.Fatal("no bearer token issued: the login registry was not exercised")
		}
	})
	t.Run("KServe's webhook injects a modelcar after ours: reinvoked, pinned, validated", func(t *testing.T) {
		kserve := newModelcarInjector(t)
		c.kubectl(t, kserve.configuration(), "apply", "-f", "-")
		defer c.kubectl(t, "", "delete", "mutatingwebhookconfiguration", "zz-kserve-modelcar")
		predictor := func(name, uri string) string {
			return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  namespace: ml
  annotations: {%q: %q}
spec:
  containers: [{name: kserve-container, image: "nginx:1.27"}]
`, name, admission.KServeStorageAnnotation, uri)
		}
		// The API server picks the new configuration up shortly after.
		for i := 0; ; i++ {
			out, _ := c.kubectlErr(predictor("probe", "oci://"+host+"/models/llama:v1"), "apply", "--dry-run=server", "-o", "jsonpath={.spec.containers[*].name}", "-f", "-")
			if strings.Contains(out, "modelcar") {
				break
			}
			if i == 40 {
				t.Fatalf("the modelcar webhook never took effect: %s", out)
			}
			time.Sleep(250 * time.Millisecond)
		}
		c.kubectl(t, predictor("predictor-signed", "oci://"+host+"/models/llama:v1"), "apply", "-f", "-")
		want := host + "/models/llama:v1@" + signed.Digest.String()
		for _, path := range []string{"{.spec.containers[1].name}={.spec.containers[1].image}", "{.spec.initContainers[0].name}={.spec.initContainers[0].image}"} {
			got := c.kubectl(t, "", "-n", "ml", "get", "pod", "predictor-signed", "-o", "jsonpath="+path)
			if !strings.HasSuffix(got, "="+want) || !strings.HasPrefix(got, "modelcar") {
				t.Errorf("%s = %q, want the modelcar pinned to %s", path, got, want)
			}
		}
		forbidden(t, predictor("predictor-unsigned", "oci://"+host+"/models/unsigned:v1"), "Forbidden", host+"/models/unsigned@sha256:", "policy rule 0 (enforce)")
		if n := kserve.calls.Load(); n < 3 {
			t.Errorf("the modelcar webhook was called %d times", n)
		}
	})
	t.Run("out-of-scope pod makes no registry call", func(t *testing.T) {
		proxy.Reset()
		c.kubectl(t, "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: ml}\nspec:\n  containers: [{name: c, image: 'nginx:1.27'}]\n", "apply", "-f", "-")
		if n := requests(proxy); n != 0 {
			t.Errorf("%d registry requests for an out-of-scope pod", n)
		}
	})
	t.Run("registry stalled is denied within the budget", func(t *testing.T) {
		proxy.SetDelay(func(*http.Request) time.Duration { return 20 * time.Second })
		defer proxy.SetDelay(nil)
		start := time.Now()
		forbidden(t, imagePod("stalled", host+"/models/fresh:v1"), "registry unreachable")
		if took := time.Since(start); took > 9*time.Second {
			t.Errorf("denied after %s with a 3 s budget", took)
		}
	})
	t.Run("broken policy keeps the old one", func(t *testing.T) {
		writeAdmissionPolicy("version: 1\nmodels: [{match: ['**'], signatures: {signers: [nobody]}}]\n")
		var body string
		for i := 0; i < 40; i++ {
			if _, body = get("/readyz"); strings.Contains(body, "policy reload failed") {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !strings.Contains(body, "policy reload failed") || !strings.Contains(body, "nobody") {
			t.Errorf("/readyz: %s", body)
		}
		forbidden(t, imagePod("unsigned2", host+"/models/unsigned:v1"), "policy rule 0 (enforce)")
		c.kubectl(t, imagePod("signed2", host+"/models/llama:v1"), "apply", "-f", "-")
		log, _ := os.ReadFile(logPath)
		if !strings.Contains(string(log), "policy reload failed") {
			t.Errorf("the log does not say the reload failed:\n%s", tail(string(log), 2000))
		}
	})
	t.Run("every decision event matches the schema and holds no secret", func(t *testing.T) {
		raw, err := os.ReadFile(filepath.Join(dir, "events.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		evs := regtest.DecisionEvents(t, raw) // each line checked against events/decision.schema.json
		verdicts := map[string]int{}
		for _, e := range evs {
			u := e["data"].(map[string]any)["unmapped"].(map[string]any)
			if u["face"] != "admission" || u["correlation_id"] == "" {
				t.Errorf("event %v", u)
			}
			verdicts[u["verdict"].(string)]++
		}
		if verdicts["pass"] == 0 || verdicts["fail"] == 0 || verdicts["error"] == 0 {
			t.Errorf("verdicts %v: want passes, failures and errors among %d events", verdicts, len(evs))
		}
		log, _ := os.ReadFile(logPath)
		secrets := append([]string{robotPassword, base64.StdEncoding.EncodeToString([]byte(robot + ":" + robotPassword))}, ts.Issued()...)
		for _, sec := range secrets {
			if strings.Contains(string(raw), sec) || strings.Contains(string(log), sec) {
				t.Errorf("a secret (%d characters) is in the webhook's events or log", len(sec))
			}
		}
	})
}

// modelcarInjector acts as KServe's pod webhook: a predictor pod whose
// storage-initializer annotation holds an oci:// URI gets a modelcar
// container and a modelcar-init init container running that reference as
// written (a tag). Its configuration sorts after ours, so ours sees the
// pod first and must be reinvoked to pin what it adds.
type modelcarInjector struct {
	srv   *httptest.Server
	calls atomic.Int32
}

func newModelcarInjector(t *testing.T) *modelcarInjector {
	m := &modelcarInjector{}
	m.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.calls.Add(1)
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
			http.Error(w, "not an AdmissionReview", http.StatusBadRequest)
			return
		}
		var pod struct {
			Metadata struct {
				Annotations map[string]string `json:"annotations"`
			} `json:"metadata"`
			Spec struct {
				Containers     []struct{ Name string } `json:"containers"`
				InitContainers []struct{ Name string } `json:"initContainers"`
			} `json:"spec"`
		}
		_ = json.Unmarshal(review.Request.Object.Raw, &pod)
		resp := &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
		uri := pod.Metadata.Annotations[admission.KServeStorageAnnotation]
		injected := false
		for _, c := range pod.Spec.Containers {
			injected = injected || c.Name == "modelcar"
		}
		if image, ok := strings.CutPrefix(uri, "oci://"); ok && !injected {
			container := map[string]any{"name": "modelcar", "image": image, "args": []string{"sh", "-c", "sleep infinity"}}
			initc := map[string]any{"name": "modelcar-init", "image": image, "args": []string{"sh", "-c", "true"}}
			var patch []map[string]any
			if len(pod.Spec.InitContainers) == 0 {
				patch = append(patch, map[string]any{"op": "add", "path": "/spec/initContainers", "value": []any{initc}})
			} else {
				patch = append(patch, map[string]any{"op": "add", "path": "/spec/initContainers/-", "value": initc})
			}
			patch = append(patch, map[string]any{"op": "add", "path": "/spec/containers/-", "value": container})
			resp.Patch, _ = json.Marshal(patch)
			pt := admissionv1.PatchTypeJSONPatch
			resp.PatchType = &pt
		}
		_ = json.NewEncoder(w).Encode(admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp})
	}))
	t.Cleanup(m.srv.Close)
	return m
}

// configuration is the injector's MutatingWebhookConfiguration: pods of
// the ml namespace, reinvocationPolicy Never (as KServe's).
func (m *modelcarInjector) configuration() string {
	ca := base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: m.srv.Certificate().Raw}))
	return fmt.Sprintf(`apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: zz-kserve-modelcar}
webhooks:
  - name: modelcar.kserve.test
    clientConfig: {url: "%s/mutate-pods", caBundle: %s}
    rules: [{operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [pods]}]
    namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ml}}
    sideEffects: None
    admissionReviewVersions: [v1]
    failurePolicy: Fail
    reinvocationPolicy: Never
    timeoutSeconds: 10
`, m.srv.URL, ca)
}

func TestAdmissionManifestsApplyToAPIServer(t *testing.T) {
	c := startCluster(t)
	helm := regtest.Tool(t, "helm")
	root := regtest.RepoRoot(t)
	c.kubectl(t, "", "create", "namespace", "modelattest-system")
	c.kubectl(t, "", "create", "namespace", "ml-prod")
	for _, k := range []string{"deploy/base", "deploy/overlays/namespaced-rbac"} {
		out := c.kubectl(t, "", "apply", "--dry-run=server", "-k", filepath.Join(root, k))
		if !strings.Contains(out, "validatingwebhookconfiguration") {
			t.Errorf("%s: %s", k, out)
		}
	}
	chart := filepath.Join(root, "charts", "modelattest-admission")
	if out, err := regtest.RunErr(helm, "lint", "--strict", chart); err != nil {
		t.Fatalf("helm lint: %v\n%s", err, out)
	}
	for _, set := range []string{"mutate=true", "mutate=false,rbac.namespaces={ml-prod}"} {
		out, err := exec.Command(helm, "template", "modelattest-admission", chart, "-n", "modelattest-system", "--set", set).Output()
		if err != nil {
			t.Fatalf("helm template --set %s: %v", set, err)
		}
		c.kubectl(t, string(out), "apply", "--dry-run=server", "-f", "-")
	}
}

const inferenceServiceCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: inferenceservices.serving.kserve.io}
spec:
  group: serving.kserve.io
  names: {kind: InferenceService, plural: inferenceservices, singular: inferenceservice, shortNames: [isvc]}
  scope: Namespaced
  versions:
    - name: v1beta1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`
