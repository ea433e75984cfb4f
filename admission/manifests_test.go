package admission

import (
	"bytes"
	"context"
	"encoding/base64"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestCELScopeRegexpIsASupersetOfTheScope(t *testing.T) {
	f := newFixture(t)
	f.writePolicy(`version: 1
trust:
  release: {key: release.pub}
models:
  - match: ["registry.example/models/**", "docker.io/library/llama*"]
    signatures: {signers: [release]}
admission:
  scope: ["registry.example/models/**", "docker.io/library/llama*", "docker.io/acme/model"]
`)
	p, err := LoadPolicy(context.Background(), f.policy)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(celScopeRegexp(p))
	for _, ref := range []string{
		"registry.example/models/llama:v1", "registry.example/models/a/b@sha256:abcd", "Registry.Example/models/x",
		"registry.example:443/models/x:v1", "registry.example./models/x",
		"llama3:8b", "docker.io/library/llama3", "index.docker.io/library/llama", "library/llama",
		"acme/model:v1", "docker.io/acme/model@sha256:ab", "registry-1.docker.io/acme/model",
	} {
		r := &modelRef{Value: ref, Field: "test"}
		r.parse()
		if r.ParseErr == nil && !p.InScope(r.Repository) {
			t.Errorf("%s (%s) is not in scope: the test is wrong", ref, r.Repository)
		}
		if !re.MatchString(ref) {
			t.Errorf("the CEL condition would not send %s, which is in scope", ref)
		}
	}
	for _, ref := range []string{"nginx:1.27", "registry.example/apps/web:v1", "quay.io/models/llama", "evil.example/registry.example/models/x"} {
		r := &modelRef{Value: ref, Field: "test"}
		r.parse()
		if p.InScope(r.Repository) {
			t.Errorf("%s is in scope: the test is wrong", ref)
		}
		if re.MatchString(ref) {
			t.Errorf("the CEL condition sends %s, which is out of scope", ref)
		}
	}
}

func TestManifestsAndCABundle(t *testing.T) {
	f := newFixture(t)
	p, err := LoadPolicy(context.Background(), f.policy)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteManifests(&buf, p, ManifestOptions{Mutate: true}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"kind: MutatingWebhookConfiguration", "kind: ValidatingWebhookConfiguration", "reinvocationPolicy: IfNeeded",
		"failurePolicy: Fail", "sideEffects: None", "timeoutSeconds: 10", "modelattest.dev/enforce: \"true\"", "- kube-system",
		"- modelattest-system", "pods/ephemeralcontainers", "cronjobs", "inferenceservices", "path: /mutate", "path: /validate", "matchConditions"} {
		if !strings.Contains(out, want) {
			t.Errorf("manifests lack %q", want)
		}
	}
	c, err := GenerateCerts(CertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	patched, err := PatchCABundle(buf.Bytes(), c.CA)
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(patched), "\n---")
	if len(docs) != 2 {
		t.Fatalf("%d documents after patching, want 2", len(docs))
	}
	want := base64.StdEncoding.EncodeToString(c.CA)
	for _, d := range docs {
		var obj struct {
			Webhooks []struct {
				ClientConfig struct {
					CABundle string `json:"caBundle"`
				} `json:"clientConfig"`
			} `json:"webhooks"`
		}
		if err := yaml.Unmarshal([]byte(d), &obj); err != nil {
			t.Fatal(err)
		}
		if len(obj.Webhooks) != 4 {
			t.Fatalf("%d webhooks, want 4", len(obj.Webhooks))
		}
		for _, w := range obj.Webhooks {
			if w.ClientConfig.CABundle != want {
				t.Errorf("caBundle not patched")
			}
		}
	}
	if _, err := PatchCABundle([]byte("apiVersion: v1\nkind: ConfigMap\n"), c.CA); err == nil {
		t.Error("patching a file without webhook configurations succeeded")
	}
}

func TestExtractWorkloads(t *testing.T) {
	tmpl := map[string]any{"spec": map[string]any{
		"serviceAccountName": "runner",
		"imagePullSecrets":   []any{map[string]any{"name": "regcred"}},
		"initContainers":     []any{map[string]any{"name": "i", "image": "r.example/models/init:v1"}},
		"containers":         []any{map[string]any{"name": "c", "image": "r.example/models/main:v1"}},
		"volumes":            []any{map[string]any{"name": "cfg"}, map[string]any{"name": "m", "image": map[string]any{"reference": "r.example/models/w:v2"}}},
	}}
	cases := []struct {
		group, kind string
		obj         map[string]any
		pointers    []string
	}{
		{"apps", "Deployment", map[string]any{"spec": map[string]any{"template": tmpl}}, []string{
			"/spec/template/spec/volumes/1/image/reference", "/spec/template/spec/initContainers/0/image", "/spec/template/spec/containers/0/image"}},
		{"batch", "CronJob", map[string]any{"spec": map[string]any{"jobTemplate": map[string]any{"spec": map[string]any{"template": tmpl}}}}, []string{
			"/spec/jobTemplate/spec/template/spec/volumes/1/image/reference", "/spec/jobTemplate/spec/template/spec/initContainers/0/image", "/spec/jobTemplate/spec/template/spec/containers/0/image"}},
		{"serving.kserve.io", "InferenceService", map[string]any{"spec": map[string]any{"predictor": map[string]any{
			"serviceAccountName": "runner", "imagePullSecrets": []any{map[string]any{"name": "regcred"}},
			"model":       map[string]any{"storageUri": "oci://r.example/models/w:v2"},
			"storageUris": []any{map[string]any{"uri": "s3://bucket/x"}, map[string]any{"uri": "oci://r.example/models/extra:v1"}},
		}}}, []string{"/spec/predictor/model/storageUri", "/spec/predictor/storageUris/1/uri"}},
	}
	for _, c := range cases {
		t.Run(c.kind, func(t *testing.T) {
			raw, _ := yaml.Marshal(c.obj)
			js, _ := yaml.YAMLToJSON(raw)
			wl, ok, err := extract(c.group, c.kind, js)
			if err != nil || !ok {
				t.Fatal(ok, err)
			}
			var got []string
			for _, r := range wl.Refs {
				got = append(got, r.Pointer)
				if r.ParseErr != nil || !strings.HasPrefix(r.Repository, "r.example/models/") {
					t.Errorf("%s: %q parsed to %q (%v)", r.Field, r.Value, r.Repository, r.ParseErr)
				}
			}
			if strings.Join(got, " ") != strings.Join(c.pointers, " ") {
				t.Errorf("pointers %v, want %v", got, c.pointers)
			}
			if wl.ServiceAccount != "runner" || strings.Join(wl.PullSecrets, ",") != "regcred" {
				t.Errorf("credentials: service account %q, pull secrets %v", wl.ServiceAccount, wl.PullSecrets)
			}
		})
	}
	if _, ok, _ := extract("", "ConfigMap", []byte(`{}`)); ok {
		t.Error("a ConfigMap is supported")
	}
}
