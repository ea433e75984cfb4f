package runtime

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/modelattest/modelattest/events"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// Broker paths.
const (
	// PathNonce issues a nonce (POST, empty body).
	PathNonce = "/v1/nonce"
	// PathKey releases a model's layer keys for evidence (POST, JSON).
	PathKey = "/v1/key"
)

// Steps a broker checks before Verify's, and after.
const (
	// StepRequest: the request body is a well-formed key request.
	StepRequest = "request"
	// StepEphemeralKey: the evidence carries a P-256 key to wrap to.
	StepEphemeralKey = "ephemeral key"
	// StepKeys: the broker holds the model's layer keys.
	StepKeys = "layer keys"
)

// Broker defaults, used when the BrokerOptions field is zero.
const (
	DefaultNonceTTL    = 60 * time.Second
	DefaultMaxNonces   = 10000
	DefaultMaxBody     = 1 << 20
	DefaultKeyTimeout  = 60 * time.Second
	DefaultMaxInFlight = 16
)

// VerifiedModel is what a ModelSource learned about the model evidence
// names: its verification report, and its manifest, fetched by digest.
type VerifiedModel struct {
	// Report is the policy decision on the model's referrer graph.
	Report *referrers.Report
	// Descriptor is the model manifest's descriptor.
	Descriptor ocispec.Descriptor
	// Manifest is the manifest, its bytes checked against the digest.
	Manifest *ocispec.Manifest
}

// ModelSource re-verifies the model that evidence names (the reference
// the guest gave and the manifest digest it bound) against the broker's
// policy. It returns an error wrapping referrers.ErrPolicyNotSatisfied
// (or referrers.ErrVerification) when the model fails the policy, whatever
// the rule's mode (the report, when one was made, comes back with it), and
// any other error when no decision could be reached. RegistryModels is the one that reads registries.
type ModelSource func(ctx context.Context, reference string, manifest digest.Digest) (*VerifiedModel, error)

// KeySource returns the layer keys of a verified model, by layer digest.
// The CLI backs it with the encryption package (ocicrypt keys unwrapped
// with the broker's private key). Keys are opaque bytes to the broker.
type KeySource func(ctx context.Context, desc ocispec.Descriptor, m *ocispec.Manifest) (map[digest.Digest][]byte, error)

// BrokerOptions configure a Broker. Models and Keys are required; every
// other zero value is the documented default.
type BrokerOptions struct {
	// Verify is the template of every evidence check: requirements,
	// roots, measurements, CRL, the policy digest, the time (zero: now).
	// Its Nonce and VerifyModel are set by the broker for each request.
	Verify VerifyOptions
	// Models re-verifies the model evidence names. Required.
	Models ModelSource
	// Keys gives a verified model's layer keys. Required.
	Keys KeySource
	// NonceTTL is how long a nonce may be presented (zero: 60 s).
	NonceTTL time.Duration
	// MaxNonces caps nonces held, used or not, until they expire (zero:
	// 10000); past it PathNonce answers 503 with Retry-After.
	MaxNonces int
	// MaxBody caps a key request's body in bytes (zero: 1 MiB).
	MaxBody int64
	// Timeout is the budget of one key request, registry reads included
	// (zero: 60 s).
	Timeout time.Duration
	// MaxInFlight caps key requests verified at once (zero: 16); past it
	// the answer is 503.
	MaxInFlight int
	// Events receives one decision event per key request (nil: none).
	Events events.Sink
	// Version is the product version in events (zero: omitted).
	Version string
	// Log receives one line per request (nil: discarded). Never a key.
	Log *slog.Logger
	// Now is the clock of nonce lifetimes (nil: time.Now).
	Now func() time.Time
}

// Broker is the relying party that releases a model's layer keys to a
// confidential VM that proves, with TEE evidence, that it loaded that
// model verified under the broker's policy. It is an http.Handler:
//
//   - POST /v1/nonce: a fresh random nonce (JSON NonceResponse), single
//     use, expiring after NonceTTL.
//   - POST /v1/key: a KeyRequest. The nonce must be one the broker issued,
//     unexpired and never presented before (it is consumed by the first
//     attempt, pass or fail); the evidence must pass Verify, REPORT_DATA
//     binding the SHA-256 of its ephemeral key; then the model's layer
//     keys come back wrapped to that key (KeyRelease). A refusal is 403
//     with a Refusal naming the failed step.
type Broker struct {
	o      BrokerOptions
	nonces *nonceStore
	slots  chan struct{}
	mux    *http.ServeMux
}

// NewBroker checks opts and returns the broker.
func NewBroker(opts BrokerOptions) (*Broker, error) {
	if opts.Models == nil || opts.Keys == nil {
		return nil, errors.New("broker: Models and Keys are required")
	}
	if _, err := digest.Parse(opts.Verify.PolicyDigest); err != nil {
		return nil, fmt.Errorf("broker: policy digest %q: %w", opts.Verify.PolicyDigest, err)
	}
	if opts.NonceTTL <= 0 {
		opts.NonceTTL = DefaultNonceTTL
	}
	if opts.MaxNonces <= 0 {
		opts.MaxNonces = DefaultMaxNonces
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultKeyTimeout
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	if opts.Events == nil {
		opts.Events = events.Discard{}
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	b := &Broker{o: opts, nonces: newNonceStore(opts.NonceTTL, opts.MaxNonces, opts.Now),
		slots: make(chan struct{}, opts.MaxInFlight), mux: http.NewServeMux()}
	b.mux.HandleFunc(PathNonce, b.serveNonce)
	b.mux.HandleFunc(PathKey, b.serveKey)
	return b, nil
}

// ServeHTTP implements http.Handler.
func (b *Broker) ServeHTTP(w http.ResponseWriter, r *http.Request) { b.mux.ServeHTTP(w, r) }

// NonceResponse is PathNonce's answer.
type NonceResponse struct {
	// Nonce is hex, NonceSize bytes.
	Nonce string `json:"nonce"`
	// Expires is when the broker stops accepting it.
	Expires time.Time `json:"expires"`
}

// KeyRequest is PathKey's body. The ephemeral P-256 key the layer keys
// are wrapped to is the evidence's public_key, the key REPORT_DATA binds.
type KeyRequest struct {
	Evidence *Evidence `json:"evidence"`
}

// Refusal is the JSON body of every non-2xx answer.
type Refusal struct {
	// Step is the check that failed (a Step* name, or "nonce").
	Step string `json:"step"`
	// Reason says why, without key material.
	Reason string `json:"reason"`
	// RequestID names the request in the decision event and the log.
	RequestID string `json:"request_id,omitempty"`
}

func (b *Broker) serveNonce(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, Refusal{Step: StepRequest, Reason: "use POST"})
		return
	}
	// A nonce request carries nothing; read at most a little of any body.
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 4096))
	n, exp, err := b.nonces.issue()
	if errors.Is(err, ErrNoncesFull) {
		w.Header().Set("Retry-After", fmt.Sprint(int(b.o.NonceTTL.Seconds())+1))
		writeJSON(w, http.StatusServiceUnavailable, Refusal{Step: StepNonce, Reason: fmt.Sprintf("%v (%d held); retry later", err, b.o.MaxNonces)})
		b.o.Log.Warn("nonce refused", "remote", r.RemoteAddr, "reason", err.Error())
		return
	}
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, Refusal{Step: StepNonce, Reason: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, NonceResponse{Nonce: hex.EncodeToString(n), Expires: exp.UTC()})
	b.o.Log.Info("nonce issued", "remote", r.RemoteAddr, "expires", exp.UTC())
}

// keyDecision is what one key request decided, for its event and log.
type keyDecision struct {
	id       string
	start    time.Time
	ev       *Evidence
	steps    []Step
	model    *referrers.Report
	released int
	status   int
	refusal  *Refusal
	// couldNot is set when no decision could be reached (registry down).
	couldNot error
}

func (b *Broker) serveKey(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, Refusal{Step: StepRequest, Reason: "use POST"})
		return
	}
	d := &keyDecision{id: events.NewID(), start: time.Now()}
	// The body is read before a slot is taken: a client that sends it
	// slowly holds its own connection, never one of the MaxInFlight
	// verifications that every guest shares.
	req := b.readRequest(w, r, d)
	if req == nil {
		b.finish(w, r, d, nil)
		return
	}
	select {
	case b.slots <- struct{}{}:
		defer func() { <-b.slots }()
	default:
		w.Header().Set("Retry-After", "1")
		d.refuse(http.StatusServiceUnavailable, StepRequest, "too many key requests in flight; retry")
		b.finish(w, r, d, nil)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), b.o.Timeout)
	defer cancel()
	rel := b.decide(ctx, req, d)
	b.finish(w, r, d, rel)
}

func (d *keyDecision) refuse(status int, step, format string, a ...any) {
	d.status = status
	d.refusal = &Refusal{Step: step, Reason: fmt.Sprintf(format, a...), RequestID: d.id}
	d.steps = append(d.steps, Step{Name: step, OK: false, Detail: d.refusal.Reason})
}

// readRequest reads a key request's body, or returns nil with d saying
// why it is not one.
func (b *Broker) readRequest(w http.ResponseWriter, r *http.Request, d *keyDecision) *KeyRequest {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		d.refuse(http.StatusUnsupportedMediaType, StepRequest, "Content-Type %q: want application/json", r.Header.Get("Content-Type"))
		return nil
	}
	var req KeyRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, b.o.MaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			d.refuse(http.StatusRequestEntityTooLarge, StepRequest, "the body is over %d bytes", b.o.MaxBody)
			return nil
		}
		d.refuse(http.StatusBadRequest, StepRequest, "not a key request: %v", err)
		return nil
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		d.refuse(http.StatusBadRequest, StepRequest, "not a key request: data after the JSON object")
		return nil
	}
	return &req
}

// decide runs the checks in order and returns the release, or nil with
// d saying why not.
func (b *Broker) decide(ctx context.Context, req *KeyRequest, d *keyDecision) *KeyRelease {
	ev := req.Evidence
	if ev == nil || ev.Format != EvidenceFormat {
		d.refuse(http.StatusBadRequest, StepRequest, "the request holds no %s evidence", EvidenceFormat)
		return nil
	}
	d.ev = ev

	// The nonce is consumed first, by this attempt, whatever follows.
	n, err := hex.DecodeString(ev.Nonce)
	if err == nil {
		err = b.nonces.take(n)
	} else {
		err = ErrNonceUnknown
	}
	if err != nil {
		d.refuse(http.StatusForbidden, StepNonce, "%v", err)
		return nil
	}
	d.steps = append(d.steps, Step{Name: StepNonce + " (single use)", OK: true, Detail: "issued by this broker, unexpired, first use"})

	if len(ev.PublicKey) == 0 {
		d.refuse(http.StatusForbidden, StepEphemeralKey, "the evidence binds no ephemeral key: there is nothing to wrap the keys to")
		return nil
	}
	if _, err := ParseP256SPKI(ev.PublicKey); err != nil {
		d.refuse(http.StatusForbidden, StepEphemeralKey, "%v", err)
		return nil
	}
	kh := sha256.Sum256(ev.PublicKey)
	d.steps = append(d.steps, Step{Name: StepEphemeralKey, OK: true, Detail: "P-256, SPKI sha256:" + hex.EncodeToString(kh[:])})

	vo := b.o.Verify
	vo.Nonce = n
	if vo.Now.IsZero() {
		vo.Now = b.o.Now()
	}
	var vm *VerifiedModel
	var modelErr error
	vo.VerifyModel = func(ctx context.Context, ref, dg string) error {
		md, err := digest.Parse(dg)
		if err != nil {
			return err
		}
		vm, modelErr = b.o.Models(ctx, ref, md)
		if vm != nil {
			d.model = vm.Report
		}
		return modelErr
	}
	res, err := Verify(ctx, ev, vo)
	if res != nil {
		d.steps = append(d.steps, res.Steps...)
	}
	if err != nil {
		if modelErr != nil && !errors.Is(modelErr, referrers.ErrPolicyNotSatisfied) && !errors.Is(modelErr, referrers.ErrVerification) {
			d.couldNot = modelErr
			d.status = http.StatusServiceUnavailable
			d.refusal = &Refusal{Step: StepModel, Reason: fmt.Sprintf("the model could not be re-verified: %v", modelErr), RequestID: d.id}
			return nil
		}
		step, reason := StepFormat, err.Error()
		if res != nil && len(res.Steps) > 0 && !res.Steps[len(res.Steps)-1].OK {
			last := res.Steps[len(res.Steps)-1]
			step, reason = last.Name, last.Detail
		}
		d.status = http.StatusForbidden
		d.refusal = &Refusal{Step: step, Reason: reason, RequestID: d.id}
		return nil
	}

	if vm == nil || vm.Manifest == nil {
		d.refuse(http.StatusInternalServerError, StepModel, "the model source returned no manifest")
		return nil
	}
	keys, err := b.o.Keys(ctx, vm.Descriptor, vm.Manifest)
	if err != nil {
		d.refuse(http.StatusForbidden, StepKeys, "%s: %v", vm.Descriptor.Digest, err)
		return nil
	}
	rel, err := WrapKeys(vm.Descriptor.Digest, keys, ev.PublicKey)
	if err != nil {
		d.refuse(http.StatusInternalServerError, StepKeys, "wrapping: %v", err)
		return nil
	}
	rel.RequestID = d.id
	d.released = len(rel.Keys)
	d.steps = append(d.steps, Step{Name: StepKeys, OK: true, Detail: fmt.Sprintf("%d layer keys wrapped to the ephemeral key", d.released)})
	d.status = http.StatusOK
	return rel
}

// finish answers, logs one line and emits one decision event.
func (b *Broker) finish(w http.ResponseWriter, r *http.Request, d *keyDecision, rel *KeyRelease) {
	if rel != nil {
		writeJSON(w, http.StatusOK, rel)
	} else {
		writeJSON(w, d.status, d.refusal)
	}
	b.o.Events.Emit(b.event(d))
	attrs := []any{"request_id", d.id, "remote", r.RemoteAddr, "status", d.status, "duration_ms", time.Since(d.start).Milliseconds()}
	if d.ev != nil {
		attrs = append(attrs, "model", d.ev.Model.Digest, "reference", d.ev.Model.Reference)
	}
	if rel != nil {
		b.o.Log.Info("keys released", append(attrs, "keys", d.released)...)
		return
	}
	b.o.Log.Warn("keys refused", append(attrs, "step", d.refusal.Step, "reason", d.refusal.Reason)...)
}

// event is the request's decision: the broker's steps and the runtime
// checks as requirements, then the model rule's requirements when the
// model was re-verified. The broker enforces whatever the rule's mode, so
// its events say enforce.
func (b *Broker) event(d *keyDecision) events.Event {
	opts := events.Options{Face: events.FaceBroker, CorrelationID: d.id, Duration: time.Since(d.start), Version: b.o.Version, Time: b.o.Now()}
	var ref string
	var md digest.Digest
	if d.ev != nil {
		ref = d.ev.Model.Reference
		if p, err := digest.Parse(d.ev.Model.Digest); err == nil {
			md = p
		}
	}
	opts.Reference = ref
	if d.couldNot != nil {
		return events.FromError(ref, md, fmt.Errorf("%s: %s", d.refusal.Step, d.refusal.Reason), opts)
	}
	pd, _ := digest.Parse(b.o.Verify.PolicyDigest)
	repo := ref
	if r, err := oras.CanonicalRepository(ref, false); err == nil {
		repo = r
	}
	rep := &referrers.Report{Repository: repo, Model: ocispec.Descriptor{Digest: md}, Policy: pd, Rule: -1,
		Mode: referrers.ModeEnforce, Passed: d.status == http.StatusOK}
	if d.model != nil {
		rep.Repository, rep.Rule, rep.Referrers = d.model.Repository, d.model.Rule, d.model.Referrers
		rep.Model.MediaType, rep.Model.Size = d.model.Model.MediaType, d.model.Model.Size
	}
	for _, s := range d.steps {
		rep.Requirements = append(rep.Requirements, referrers.Requirement{What: "runtime: " + s.Name, Satisfied: s.OK, Reason: s.Detail})
	}
	if d.model != nil {
		rep.Requirements = append(rep.Requirements, d.model.Requirements...)
	}
	return events.FromReport(rep, opts)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
