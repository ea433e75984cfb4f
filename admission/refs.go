package admission

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"

	"github.com/modelattest/modelattest/oras"
)

// ociScheme prefixes a KServe storage URI that names an OCI artifact.
const ociScheme = "oci://"

// modelRef is one place in an object that names an image or model.
type modelRef struct {
	// Pointer is the JSON pointer of the field (for a patch).
	Pointer string
	// Field names it for people: spec.volumes[0].image.reference.
	Field string
	// Value is the field as written.
	Value string
	// Scheme is "oci://" for a storage URI, "" for an image reference.
	Scheme string
	// ParseErr is set when Value does not parse as a reference.
	ParseErr error
	// Repository is the canonical host/name; Tag and Digest as given.
	Repository string
	Tag        string
	Digest     digest.Digest
}

// pinned is the reference with the digest added, as it is written back.
func (r *modelRef) pinned(d digest.Digest) string {
	v := strings.TrimPrefix(r.Value, r.Scheme)
	if r.Digest == "" {
		v += "@" + d.String()
	}
	return r.Scheme + v
}

// String is the canonical reference, for messages and events.
func (r *modelRef) String() string {
	s := r.Repository
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest.String()
	}
	return s
}

// parseRef fills Repository, Tag and Digest from Value. Image references
// are read as the kubelet reads them (docker.io short names); the
// repository is then put in the canonical form the policy matches: host
// lower-cased, default port dropped, docker.io aliases merged.
func (r *modelRef) parse() {
	v := strings.TrimPrefix(r.Value, r.Scheme)
	named, err := reference.ParseNormalizedNamed(v)
	if err != nil {
		r.ParseErr = fmt.Errorf("%s %q: %w", r.Field, r.Value, err)
		return
	}
	r.Repository = canonicalRepository(reference.Domain(named), reference.Path(named))
	if t, ok := named.(reference.Tagged); ok {
		r.Tag = t.Tag()
	}
	if d, ok := named.(reference.Digested); ok {
		r.Digest = d.Digest()
		if err := r.Digest.Validate(); err != nil {
			r.ParseErr = fmt.Errorf("%s %q: %w", r.Field, r.Value, err)
		}
	}
	if r.Tag == "" && r.Digest == "" {
		r.Tag = "latest" // what the kubelet pulls
	}
}

// canonicalRepository puts host/path in the one form names are compared
// in.
func canonicalRepository(host, path string) string {
	// oras.CanonicalHost, as the policy's rules: a trailing dot, a port
	// written 0443 or 443 and IPv6 spellings are one registry.
	host = oras.CanonicalHost(host, false)
	switch host {
	case "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		host = "docker.io"
	}
	if host == "docker.io" && !strings.Contains(path, "/") {
		path = "library/" + path
	}
	return host + "/" + path
}

// podSpecPaths says where a kind keeps its pod spec.
var podSpecPaths = map[string][]string{
	"Pod":                   {"spec"},
	"EphemeralContainers":   {"spec"}, // pods/ephemeralcontainers before it took a Pod
	"Deployment":            {"spec", "template", "spec"},
	"StatefulSet":           {"spec", "template", "spec"},
	"DaemonSet":             {"spec", "template", "spec"},
	"ReplicaSet":            {"spec", "template", "spec"},
	"ReplicationController": {"spec", "template", "spec"},
	"Job":                   {"spec", "template", "spec"},
	"CronJob":               {"spec", "jobTemplate", "spec", "template", "spec"},
	"PodTemplate":           {"template", "spec"},
}

// workload is what an object says about models and credentials.
type workload struct {
	Refs []*modelRef
	// PullSecrets are the imagePullSecrets named in the object.
	PullSecrets []string
	// ServiceAccount is the service account the pods run as ("" when the
	// object names none: "default").
	ServiceAccount string
	// Annotations of the object itself.
	Annotations map[string]string
}

// extract reads the model references of an object of kind (a Kubernetes
// kind; InferenceService of any serving.kserve.io version). supported is
// false for a kind the webhook does not know.
func extract(group, kind string, raw []byte) (w *workload, supported bool, err error) {
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, true, fmt.Errorf("decode %s: %w", kind, err)
	}
	w = &workload{Annotations: map[string]string{}}
	if md, ok := obj["metadata"].(map[string]any); ok {
		if an, ok := md["annotations"].(map[string]any); ok {
			for k, v := range an {
				if s, ok := v.(string); ok {
					w.Annotations[k] = s
				}
			}
		}
	}
	if kind == "InferenceService" && group == "serving.kserve.io" {
		pred, _ := dig(obj, "spec", "predictor").(map[string]any)
		if pred == nil {
			return w, true, nil
		}
		if m, ok := pred["model"].(map[string]any); ok {
			if u, ok := m["storageUri"].(string); ok && strings.HasPrefix(u, ociScheme) {
				w.add("/spec/predictor/model/storageUri", "spec.predictor.model.storageUri", u, ociScheme)
			}
		}
		if us, ok := pred["storageUris"].([]any); ok {
			for i, e := range us {
				if m, ok := e.(map[string]any); ok {
					if u, ok := m["uri"].(string); ok && strings.HasPrefix(u, ociScheme) {
						w.add(fmt.Sprintf("/spec/predictor/storageUris/%d/uri", i), fmt.Sprintf("spec.predictor.storageUris[%d].uri", i), u, ociScheme)
					}
				}
			}
		}
		w.podCredentials(pred)
		return w, true, nil
	}
	path, ok := podSpecPaths[kind]
	if !ok || (group != "" && group != "apps" && group != "batch") {
		return nil, false, nil
	}
	spec, _ := dig(obj, path...).(map[string]any)
	if spec == nil {
		return w, true, nil
	}
	ptr := "/" + strings.Join(path, "/")
	field := strings.Join(path, ".")
	if vols, ok := spec["volumes"].([]any); ok {
		for i, v := range vols {
			if ref, ok := dig(v, "image", "reference").(string); ok && ref != "" {
				w.add(fmt.Sprintf("%s/volumes/%d/image/reference", ptr, i), fmt.Sprintf("%s.volumes[%d].image.reference", field, i), ref, "")
			}
		}
	}
	for _, list := range []string{"initContainers", "containers", "ephemeralContainers"} {
		cs, _ := spec[list].([]any)
		for i, c := range cs {
			if img, ok := dig(c, "image").(string); ok && img != "" {
				w.add(fmt.Sprintf("%s/%s/%d/image", ptr, list, i), fmt.Sprintf("%s.%s[%d].image", field, list, i), img, "")
			}
		}
	}
	w.podCredentials(spec)
	return w, true, nil
}

func (w *workload) add(pointer, field, value, scheme string) {
	r := &modelRef{Pointer: pointer, Field: field, Value: value, Scheme: scheme}
	r.parse()
	w.Refs = append(w.Refs, r)
}

func (w *workload) podCredentials(spec map[string]any) {
	if ps, ok := spec["imagePullSecrets"].([]any); ok {
		for _, s := range ps {
			if n, ok := dig(s, "name").(string); ok && n != "" {
				w.PullSecrets = append(w.PullSecrets, n)
			}
		}
	}
	w.ServiceAccount, _ = spec["serviceAccountName"].(string)
	if w.ServiceAccount == "" {
		w.ServiceAccount, _ = spec["serviceAccount"].(string)
	}
}

func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// jsonPointerEscape escapes one JSON pointer segment (RFC 6901).
func jsonPointerEscape(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

var _ = strconv.Itoa
