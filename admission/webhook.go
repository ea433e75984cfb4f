package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/modelattest/modelattest/events"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// Annotations the webhook reads.
const (
	// ExemptionAnnotation on an object or its namespace names a break-glass
	// exemption of the policy.
	ExemptionAnnotation = "modelattest.dev/exemption"
	// EnforceLabel opts a namespace in: only namespaces labelled
	// modelattest.dev/enforce: "true" reach the webhook.
	EnforceLabel = "modelattest.dev/enforce"
)

// Options configure a Webhook. The zero value of each field is documented
// with it.
type Options struct {
	// PolicyFile is the policy (required). It is re-read every
	// ReloadInterval; a new policy that does not load keeps the old one.
	PolicyFile string
	// Remote says how to reach registries (TLS, CA file, the webhook's own
	// Docker config and credential helpers). Its HTTPClient is ignored:
	// the webhook keeps one transport for every review.
	Remote oras.RemoteOptions
	// Mutate says a mutating webhook pins references to digests, so the
	// validating webhook refuses an in-scope reference without a digest.
	Mutate bool
	// Timeout is the budget of one review (0: 8 s, under the API server's
	// 10 s). Past it the answer is a deny saying "registry unreachable".
	Timeout time.Duration
	// CacheTTL is how long a verified decision is reused (0: 5 min;
	// negative: no cache at all). It is never longer than the evidence
	// stays valid: a decision is checked as of the end of its TTL.
	CacheTTL time.Duration
	// TagTTL is how long a tag's digest and a failed decision are reused
	// (0: 30 s; negative: not cached).
	TagTTL time.Duration
	// ReloadInterval is how often the policy file is checked for changes
	// (0: 5 s).
	ReloadInterval time.Duration
	// Kube, when set, is how pull secrets, service accounts and namespace
	// annotations are read (in cluster: rest.InClusterConfig). Nil: only
	// the webhook's own credentials are used.
	Kube *rest.Config
	// Events receives one decision event per model reference of each
	// validating review, correlated by the request UID (nil: none).
	Events events.Sink
	// Version is the product version put in events (zero: omitted).
	Version string
	// Log receives operational messages (nil: discarded).
	Log *slog.Logger
	// Concurrency bounds the models of one review checked at once (0: 4).
	Concurrency int
}

// Webhook answers AdmissionReviews. Create it with New, serve Handler, and
// call Run for policy reloads.
type Webhook struct {
	opts    Options
	log     *slog.Logger
	policy  atomic.Pointer[loadedPolicy]
	reload  atomic.Pointer[string] // why the last reload failed ("" when it did not)
	cache   *cache
	metrics *metrics
	reg     *http.Client
	targets targets
	kube    *kubeClient
}

type loadedPolicy struct {
	*Policy
	raw      digest.Digest
	loadedAt time.Time
}

// New loads the policy and prepares the webhook. A policy that does not
// load is an error: the webhook never starts without one.
func New(ctx context.Context, opts Options) (*Webhook, error) {
	if opts.PolicyFile == "" {
		return nil, fmt.Errorf("admission: no policy file")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 8 * time.Second
	}
	if opts.CacheTTL == 0 {
		opts.CacheTTL = 5 * time.Minute
	}
	if opts.TagTTL == 0 {
		opts.TagTTL = 30 * time.Second
	}
	if opts.ReloadInterval <= 0 {
		opts.ReloadInterval = 5 * time.Second
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	reg, err := registryClient(opts.Remote)
	if err != nil {
		return nil, err
	}
	w := &Webhook{opts: opts, log: log, cache: newCache(), metrics: newMetrics(), reg: reg}
	if opts.Kube != nil {
		if w.kube, err = newKubeClient(opts.Kube); err != nil {
			return nil, err
		}
	}
	if _, err := w.loadPolicy(ctx); err != nil {
		return nil, err
	}
	return w, nil
}

// loadPolicy reads the policy file; it reports whether the policy changed.
func (w *Webhook) loadPolicy(ctx context.Context) (bool, error) {
	p, err := LoadPolicy(ctx, w.opts.PolicyFile)
	if err != nil {
		return false, err
	}
	if cur := w.policy.Load(); cur != nil && cur.Digest == p.Digest {
		return false, nil
	}
	w.policy.Store(&loadedPolicy{Policy: p, raw: p.Digest, loadedAt: time.Now()})
	w.metrics.policyLoads.Inc()
	return true, nil
}

// Run re-reads the policy every ReloadInterval until ctx ends. A policy
// that no longer loads keeps the previous one in force; /readyz and the
// log say why until a good one is in place.
func (w *Webhook) Run(ctx context.Context) {
	t := time.NewTicker(w.opts.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.Reload(ctx)
	}
}

// Reload re-reads the policy file once (Run calls it on a timer).
func (w *Webhook) Reload(ctx context.Context) {
	changed, err := w.loadPolicy(ctx)
	switch {
	case err != nil:
		msg := err.Error()
		if prev := w.reload.Swap(&msg); prev == nil || *prev != msg {
			w.metrics.policyErrors.Inc()
			w.log.Error("policy reload failed: keeping the policy loaded before", "file", w.opts.PolicyFile,
				"policy", w.policy.Load().raw, "error", msg)
		}
	case changed:
		w.reload.Store(nil)
		w.log.Info("policy reloaded", "file", w.opts.PolicyFile, "policy", w.policy.Load().raw)
	default:
		if prev := w.reload.Swap(nil); prev != nil {
			w.log.Info("policy file loads again", "file", w.opts.PolicyFile, "policy", w.policy.Load().raw)
		}
	}
}

// Handler serves /validate, /mutate, /healthz, /readyz and /metrics.
func (w *Webhook) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/validate", func(rw http.ResponseWriter, r *http.Request) { w.serveReview(rw, r, false) })
	mux.HandleFunc("/mutate", func(rw http.ResponseWriter, r *http.Request) { w.serveReview(rw, r, true) })
	mux.HandleFunc("/healthz", func(rw http.ResponseWriter, _ *http.Request) { fmt.Fprintln(rw, "ok") })
	mux.HandleFunc("/readyz", w.serveReady)
	mux.Handle("/metrics", w.metrics.handler())
	return mux
}

// serveReady is 200 once a policy is loaded. A failed reload does not make
// the webhook unready (the policy before it still decides), but the body
// says so, as the log does.
func (w *Webhook) serveReady(rw http.ResponseWriter, _ *http.Request) {
	p := w.policy.Load()
	if p == nil {
		http.Error(rw, "no policy loaded", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintf(rw, "ok: policy %s loaded at %s\n", p.raw, p.loadedAt.UTC().Format(time.RFC3339))
	if msg := w.reload.Load(); msg != nil {
		fmt.Fprintf(rw, "policy reload failed, still enforcing %s: %s\n", p.raw, *msg)
	}
}

// maxReviewBytes bounds an AdmissionReview body (the API server's own
// request limit is 3 MiB; a review holds the object twice).
const maxReviewBytes = 7 << 20

func (w *Webhook) serveReview(rw http.ResponseWriter, r *http.Request, mutate bool) {
	if r.Method != http.MethodPost {
		http.Error(rw, "POST an AdmissionReview", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxReviewBytes+1))
	if err != nil || len(body) > maxReviewBytes {
		http.Error(rw, "AdmissionReview body unreadable or over 7 MiB", http.StatusRequestEntityTooLarge)
		return
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
		http.Error(rw, fmt.Sprintf("not an admission.k8s.io/v1 AdmissionReview: %v", err), http.StatusBadRequest)
		return
	}
	resp := w.Review(r.Context(), review.Request, mutate)
	out := admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp}
	if out.APIVersion == "" {
		out.APIVersion, out.Kind = "admission.k8s.io/v1", "AdmissionReview"
	}
	rw.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(rw).Encode(out)
}

// outcome of one model in one review.
type modelOutcome struct {
	ref    *modelRef
	digest digest.Digest
	report *referrers.Report
	err    error
	cached bool
}

// Review decides one admission request. mutate selects the mutating
// endpoint, which pins verified references and never denies (the
// validating endpoint decides).
func (w *Webhook) Review(ctx context.Context, req *admissionv1.AdmissionRequest, mutate bool) *admissionv1.AdmissionResponse {
	start := time.Now()
	endpoint := "validate"
	if mutate {
		endpoint = "mutate"
	}
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	ev := &reviewEvents{req: req, start: start}
	defer func() {
		w.metrics.observe(endpoint, outcomeOf(resp), time.Since(start))
		if !mutate { // the validating call decides; the mutating one only pins
			ev.emit(w.opts.Events, w.opts.Version, resp)
		}
	}()

	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return resp
	}
	if req.SubResource != "" && req.SubResource != "ephemeralcontainers" {
		return resp
	}
	wl, supported, err := extract(req.Kind.Group, req.Kind.Kind, req.Object.Raw)
	if !supported {
		return resp
	}
	if err != nil {
		ev.add(pendingEvent{object: objectName(req), err: err})
		return deny(resp, err.Error())
	}
	pol := w.policy.Load()

	// Only what the policy's scope names is this webhook's business; an
	// unparsable reference is refused, since the kubelet may read it in a
	// way we did not.
	var refs []*modelRef
	for _, r := range wl.Refs {
		if r.ParseErr != nil {
			ev.add(pendingEvent{ref: r, err: r.ParseErr})
			return deny(resp, r.ParseErr.Error())
		}
		if pol.InScope(r.Repository) {
			refs = append(refs, r)
		}
	}
	if len(refs) == 0 {
		return resp
	}

	if ex, why := w.exempt(ctx, pol, req.Namespace, wl); ex != nil {
		msg := fmt.Sprintf("admitted unverified under the policy's exemption %q (%s)", ex.Name, ex.Reason)
		resp.Warnings = append(resp.Warnings, "modelattest: "+msg)
		resp.AuditAnnotations = map[string]string{"exemption": ex.Name, "exemption-reason": ex.Reason}
		for _, r := range refs {
			ev.add(pendingEvent{ref: r, digest: r.Digest, exemption: ex})
		}
		w.metrics.exemptions.Inc()
		w.log.Warn("exemption used", "exemption", ex.Name, "namespace", req.Namespace, "name", req.Name, "uid", req.UID)
		return resp
	} else if why != "" {
		resp.Warnings = append(resp.Warnings, "modelattest: "+why+": the models are verified as usual")
	}

	ctx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
	defer cancel()
	creds := w.pullCredentials(ctx, req.Namespace, wl)
	outs := w.checkAll(ctx, pol, refs, creds)

	var denials []string
	var patch []patchOp
	var annots []auditEntry
	for _, o := range outs {
		ev.add(pendingEvent{ref: o.ref, digest: o.digest, report: o.report, err: o.err})
		switch {
		case o.err != nil:
			reason := fmt.Sprintf("model %s (%s): %s", o.ref.Value, o.ref.Field, o.err)
			denials = append(denials, reason)
		default:
			rep := o.report
			first := firstFailure(rep)
			switch {
			case rep.Passed:
			case rep.Mode == referrers.ModeWarn:
				resp.Warnings = append(resp.Warnings, fmt.Sprintf("modelattest: model %s@%s fails policy rule %d (warn mode, not enforced): %s", o.ref.Repository, o.digest, rep.Rule, first))
			case rep.Mode == referrers.ModeAudit:
			default:
				denials = append(denials, fmt.Sprintf("model %s@%s (%s) fails policy rule %d (enforce): %s", o.ref.Repository, o.digest, o.ref.Field, rep.Rule, first))
			}
			if o.ref.Digest == "" && o.digest != "" && (rep.Passed || rep.Mode != referrers.ModeEnforce) {
				patch = append(patch, patchOp{Op: "replace", Path: o.ref.Pointer, Value: o.ref.pinned(o.digest)})
			}
			annots = append(annots, auditEntry{Model: o.ref.Repository + "@" + o.digest.String(), Rule: rep.Rule, Mode: string(rep.Mode), Passed: rep.Passed, Reason: first})
		}
	}
	if len(annots) > 0 {
		b, _ := json.Marshal(annots)
		resp.AuditAnnotations = map[string]string{"models": string(b), "policy": pol.raw.String()}
	}
	if mutate {
		// Pin what was checked; the validating webhook gives the verdict.
		resp.Warnings = nil
		if len(patch) > 0 {
			b, _ := json.Marshal(patch)
			pt := admissionv1.PatchTypeJSONPatch
			resp.Patch, resp.PatchType = b, &pt
		}
		return resp
	}
	if len(denials) > 0 {
		return deny(resp, "modelattest: "+strings.Join(denials, "; "))
	}
	// Only now, so that a model that fails is refused for what it lacks:
	// with a mutating webhook pinning every verified model, an in-scope
	// reference without a digest means that webhook was bypassed.
	if w.opts.Mutate {
		for _, r := range refs {
			if r.Digest == "" {
				err := fmt.Errorf("%s %q is not pinned to a digest: the mutating webhook pins every verified model; was it bypassed?", r.Field, r.Value)
				return deny(resp, "modelattest: "+err.Error())
			}
		}
	}
	return resp
}

// objectName names the request's object in an event when no model can be
// read from it: "Pod ml/name".
func objectName(req *admissionv1.AdmissionRequest) string {
	name := req.Name
	if req.Namespace != "" {
		name = req.Namespace + "/" + name
	}
	return req.Kind.Kind + " " + name
}

type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value string `json:"value"`
}

type auditEntry struct {
	Model  string `json:"model"`
	Rule   int    `json:"rule"`
	Mode   string `json:"mode"`
	Passed bool   `json:"passed"`
	Reason string `json:"reason,omitempty"`
}

func deny(resp *admissionv1.AdmissionResponse, msg string) *admissionv1.AdmissionResponse {
	resp.Allowed = false
	resp.Patch, resp.PatchType = nil, nil
	resp.Result = &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusForbidden,
		Reason: metav1.StatusReasonForbidden, Message: msg}
	return resp
}

func outcomeOf(resp *admissionv1.AdmissionResponse) string {
	switch {
	case !resp.Allowed:
		return "denied"
	case len(resp.Warnings) > 0:
		return "warned"
	default:
		return "allowed"
	}
}

// firstFailure names the first requirement that did not hold.
func firstFailure(rep *referrers.Report) string {
	for _, r := range rep.Requirements {
		if !r.Satisfied {
			return r.What + ": " + r.Reason
		}
	}
	return ""
}

// checkAll checks each distinct reference at most once, a few at a time.
func (w *Webhook) checkAll(ctx context.Context, pol *loadedPolicy, refs []*modelRef, creds *pullCreds) []modelOutcome {
	outs := make([]modelOutcome, len(refs))
	first := map[string]int{}
	sem := make(chan struct{}, w.opts.Concurrency)
	var wg sync.WaitGroup
	for i, r := range refs {
		outs[i].ref = r
		if _, ok := first[r.String()]; ok {
			continue
		}
		first[r.String()] = i
		wg.Add(1)
		go func(o *modelOutcome) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			o.digest, o.report, o.cached, o.err = w.check(ctx, pol, o.ref, creds)
		}(&outs[i])
	}
	wg.Wait()
	for i := range outs {
		if j := first[outs[i].ref.String()]; j != i {
			ref := outs[i].ref
			outs[i] = outs[j]
			outs[i].ref = ref
		}
	}
	return outs
}

// errUnreachable is wrapped by every error that means the registry did
// not answer in time: the review is denied, never allowed.
var errUnreachable = errors.New("registry unreachable")
