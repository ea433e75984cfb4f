package admission

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"

	admregv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/modelattest/modelattest/internal/glob"
	"github.com/modelattest/modelattest/oras"
)

// ManifestOptions say how the API server reaches the webhook. Zero fields
// take the defaults given with each.
type ManifestOptions struct {
	// Name of both configurations (default "modelattest-admission").
	Name string
	// Namespace and Service of the webhook (defaults "modelattest-system",
	// "modelattest-admission"); Port of the Service (default 443).
	Namespace, Service string
	Port               int32
	// URL, when set, is used instead of the Service (a webhook outside the
	// cluster): https://host:port, without a path.
	URL string
	// CABundle is the PEM CA that signed the serving certificate. Empty
	// with CertManager set: cert-manager's CA injector fills it.
	CABundle []byte
	// CertManager is NAMESPACE/CERTIFICATE of a cert-manager Certificate:
	// the configurations get its inject-ca-from annotation.
	CertManager string
	// Mutate adds the MutatingWebhookConfiguration that pins digests.
	Mutate bool
	// TimeoutSeconds is the API server's wait (default 10, the maximum).
	TimeoutSeconds int32
}

func (o *ManifestOptions) defaults() {
	if o.Name == "" {
		o.Name = "modelattest-admission"
	}
	if o.Namespace == "" {
		o.Namespace = "modelattest-system"
	}
	if o.Service == "" {
		o.Service = "modelattest-admission"
	}
	if o.Port == 0 {
		o.Port = 443
	}
	if o.TimeoutSeconds == 0 {
		o.TimeoutSeconds = 10
	}
}

// webhookShape is one webhook entry: the resources it covers and where
// their pod spec (or storage URI) lives.
type webhookShape struct {
	name  string
	rules []admregv1.RuleWithOperations
	// spec is the CEL path of the pod spec ("" for InferenceService).
	spec []string
}

func rule(group, version string, resources ...string) admregv1.RuleWithOperations {
	scope := admregv1.NamespacedScope
	return admregv1.RuleWithOperations{
		Operations: []admregv1.OperationType{admregv1.Create, admregv1.Update},
		Rule:       admregv1.Rule{APIGroups: []string{group}, APIVersions: []string{version}, Resources: resources, Scope: &scope},
	}
}

var shapes = []webhookShape{
	{name: "pods", rules: []admregv1.RuleWithOperations{rule("", "v1", "pods", "pods/ephemeralcontainers")}, spec: []string{"spec"}},
	{name: "workloads", rules: []admregv1.RuleWithOperations{
		rule("apps", "v1", "deployments", "statefulsets", "daemonsets", "replicasets"),
		rule("batch", "v1", "jobs"),
	}, spec: []string{"spec", "template", "spec"}},
	{name: "cronjobs", rules: []admregv1.RuleWithOperations{rule("batch", "v1", "cronjobs")}, spec: []string{"spec", "jobTemplate", "spec", "template", "spec"}},
	{name: "inferenceservices", rules: []admregv1.RuleWithOperations{rule("serving.kserve.io", "*", "inferenceservices")}},
}

// MatchConditions are the CEL conditions of each webhook entry, by entry
// name: only objects with an in-scope image volume, container image or
// oci:// storage URI are sent. They are a superset of the scope (host
// case, default port and docker.io aliases are allowed for); the webhook
// applies the scope exactly.
func MatchConditions(p *Policy) map[string][]admregv1.MatchCondition {
	re := celScopeRegexp(p)
	out := map[string][]admregv1.MatchCondition{}
	for _, s := range shapes {
		out[s.name] = []admregv1.MatchCondition{{Name: "has-model-reference", Expression: celExpression(s, re)}}
	}
	return out
}

func celExpression(s webhookShape, re string) string {
	if s.spec == nil {
		pred := "object.spec.predictor"
		oci := fmt.Sprintf("r'(?i)^oci://%s'", strings.TrimPrefix(re, "(?i)^"))
		return fmt.Sprintf("has(object.spec) && has(%[1]s) && ("+
			"(has(%[1]s.model) && has(%[1]s.model.storageUri) && %[1]s.model.storageUri.matches(%[2]s)) || "+
			"(has(%[1]s.storageUris) && %[1]s.storageUris.exists(u, has(u.uri) && u.uri.matches(%[2]s))))", pred, oci)
	}
	var guard []string
	for i := range s.spec {
		guard = append(guard, "has(object."+strings.Join(s.spec[:i+1], ".")+")")
	}
	spec := "object." + strings.Join(s.spec, ".")
	q := "r'" + re + "'" // a raw string: CEL refuses \. as an escape
	parts := []string{fmt.Sprintf("(has(%[1]s.volumes) && %[1]s.volumes.exists(v, has(v.image) && has(v.image.reference) && v.image.reference.matches(%[2]s)))", spec, q)}
	for _, list := range []string{"containers", "initContainers", "ephemeralContainers"} {
		parts = append(parts, fmt.Sprintf("(has(%[1]s.%[2]s) && %[1]s.%[2]s.exists(c, has(c.image) && c.image.matches(%[3]s)))", spec, list, q))
	}
	if s.name == "pods" {
		// A KServe predictor pod names its model only in this annotation
		// until KServe's own webhook injects the modelcar container. The
		// API server reinvokes (IfNeeded) only webhooks it called in the
		// first round, so ours must be called for it then, or a modelcar
		// injected after us would never be pinned.
		oci := fmt.Sprintf("r'(?i)^oci://%s'", strings.TrimPrefix(re, "(?i)^"))
		parts = append(parts, fmt.Sprintf("(has(object.metadata.annotations) && '%[1]s' in object.metadata.annotations && object.metadata.annotations['%[1]s'].matches(%[2]s))",
			KServeStorageAnnotation, oci))
	}
	return strings.Join(guard, " && ") + " && (" + strings.Join(parts, " || ") + ")"
}

// KServeStorageAnnotation is where KServe puts a predictor pod's storage
// URI; its pod webhook turns an oci:// one into the modelcar containers.
const KServeStorageAnnotation = "internal.serving.kserve.io/storage-initializer-sourceuri"

// celScopeRegexp is an RE2 regexp matching every reference (with its tag
// or digest) whose canonical repository is in scope, and maybe a few more.
func celScopeRegexp(p *Policy) string {
	scope := p.Admission.Scope
	if len(scope) == 0 {
		for _, r := range p.Models {
			scope = append(scope, r.Match...)
		}
	}
	var alts []string
	seen := map[string]bool{}
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			alts = append(alts, s)
		}
	}
	for _, g := range scope {
		host, path, ok := strings.Cut(oras.CanonicalPattern(g), "/")
		if !ok || strings.Contains(host, "**") {
			add(glob.Expr(g))
			continue
		}
		// Every spelling of the host that names the same registry: a
		// trailing dot, the default port, a port with leading zeros (a
		// wildcard host included: *.acme.example matches
		// x.acme.example:443).
		hh, port, err := net.SplitHostPort(host)
		if err != nil {
			hh, port = strings.Trim(host, "[]"), ""
		}
		h := glob.Expr(hh)
		if strings.Contains(hh, ":") {
			h = `\[` + h + `\]`
		}
		if port == "" {
			h += `\.?(?::0*443)?`
		} else {
			h += `\.?:0*` + regexp.QuoteMeta(port)
		}
		add(h + "/" + glob.Expr(path))
		if strings.EqualFold(host, "docker.io") {
			add(`(?:index\.docker\.io|registry-1\.docker\.io|registry\.hub\.docker\.com)/` + glob.Expr(path))
			add(glob.Expr(path))
			if rest, ok := strings.CutPrefix(path, "library/"); ok {
				add(glob.Expr(rest))
			}
		}
	}
	return `(?i)^(?:` + strings.Join(alts, "|") + `)(?:[:@].*)?$`
}

// WebhookConfigurations builds the validating (and, with Mutate, the
// mutating) webhook configuration for policy p: failurePolicy Fail,
// sideEffects None, only namespaces labelled modelattest.dev/enforce=true
// and never kube-system or the webhook's own namespace, and the CEL match
// conditions generated from the policy's scope.
func WebhookConfigurations(p *Policy, o ManifestOptions) (*admregv1.ValidatingWebhookConfiguration, *admregv1.MutatingWebhookConfiguration) {
	o.defaults()
	conds := MatchConditions(p)
	fail := admregv1.Fail
	none := admregv1.SideEffectClassNone
	equiv := admregv1.Equivalent
	timeout := o.TimeoutSeconds
	nsSel := &metav1.LabelSelector{
		MatchLabels: map[string]string{EnforceLabel: "true"},
		MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"kube-system", o.Namespace},
		}},
	}
	client := func(path string) admregv1.WebhookClientConfig {
		c := admregv1.WebhookClientConfig{CABundle: o.CABundle}
		if o.URL != "" {
			u := strings.TrimSuffix(o.URL, "/") + path
			c.URL = &u
		} else {
			port := o.Port
			c.Service = &admregv1.ServiceReference{Namespace: o.Namespace, Name: o.Service, Path: &path, Port: &port}
		}
		return c
	}
	meta := metav1.ObjectMeta{Name: o.Name, Labels: map[string]string{"app.kubernetes.io/name": "modelattest-admission"}}
	if o.CertManager != "" {
		meta.Annotations = map[string]string{"cert-manager.io/inject-ca-from": o.CertManager}
	}
	v := &admregv1.ValidatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingWebhookConfiguration"},
		ObjectMeta: meta,
	}
	for _, s := range shapes {
		v.Webhooks = append(v.Webhooks, admregv1.ValidatingWebhook{
			Name: s.name + ".validate.modelattest.dev", ClientConfig: client("/validate"), Rules: s.rules,
			FailurePolicy: &fail, MatchPolicy: &equiv, NamespaceSelector: nsSel, SideEffects: &none,
			TimeoutSeconds: &timeout, AdmissionReviewVersions: []string{"v1"}, MatchConditions: conds[s.name],
		})
	}
	if !o.Mutate {
		return v, nil
	}
	reinvoke := admregv1.IfNeededReinvocationPolicy
	m := &admregv1.MutatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingWebhookConfiguration"},
		ObjectMeta: meta,
	}
	for _, s := range shapes {
		m.Webhooks = append(m.Webhooks, admregv1.MutatingWebhook{
			Name: s.name + ".mutate.modelattest.dev", ClientConfig: client("/mutate"), Rules: s.rules,
			FailurePolicy: &fail, MatchPolicy: &equiv, NamespaceSelector: nsSel, SideEffects: &none,
			TimeoutSeconds: &timeout, AdmissionReviewVersions: []string{"v1"}, MatchConditions: conds[s.name],
			ReinvocationPolicy: &reinvoke,
		})
	}
	return v, m
}

// WriteManifests writes the webhook configurations as YAML documents.
func WriteManifests(w io.Writer, p *Policy, o ManifestOptions) error {
	v, m := WebhookConfigurations(p, o)
	var docs []any
	if m != nil {
		docs = append(docs, m)
	}
	docs = append(docs, v)
	var buf bytes.Buffer
	for i, d := range docs {
		b, err := yaml.Marshal(d)
		if err != nil {
			return err
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(stripCreationTimestamp.ReplaceAll(b, nil))
	}
	_, err := w.Write(buf.Bytes())
	return err
}

var stripCreationTimestamp = regexp.MustCompile(`(?m)^\s*creationTimestamp: null\n`)
