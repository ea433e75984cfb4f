package runtime

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/modelattest/modelattest/events"
	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/referrers"
)

// fakeClock is a settable clock for nonce lifetimes.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestNonceStore(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	s := newNonceStore(60*time.Second, 3, clk.now)
	a, exp, err := s.issue()
	if err != nil || len(a) != NonceSize || !exp.Equal(clk.now().Add(60*time.Second)) {
		t.Fatalf("issue: %x %v %v", a, exp, err)
	}
	b, _, _ := s.issue()
	if bytes.Equal(a, b) {
		t.Fatal("two nonces alike")
	}
	// Single use: the first take consumes, the second is a replay.
	if err := s.take(a); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if err := s.take(a); !errors.Is(err, ErrNonceUsed) {
		t.Fatalf("replay: %v", err)
	}
	// Never issued, or the wrong length.
	if err := s.take(make([]byte, NonceSize)); !errors.Is(err, ErrNonceUnknown) {
		t.Fatalf("unknown: %v", err)
	}
	if err := s.take([]byte("short")); !errors.Is(err, ErrNonceUnknown) {
		t.Fatalf("short: %v", err)
	}
	// Capacity: a (used), b and c fill the store; used entries count until
	// they expire.
	c, _, _ := s.issue()
	if _, _, err := s.issue(); !errors.Is(err, ErrNoncesFull) {
		t.Fatalf("fourth nonce with a cap of 3: %v", err)
	}
	// Expiry: at exactly 60 s b is expired, and presenting it consumes it.
	clk.add(60 * time.Second)
	if err := s.take(b); !errors.Is(err, ErrNonceExpired) {
		t.Fatalf("expired: %v", err)
	}
	if err := s.take(b); !errors.Is(err, ErrNonceUsed) {
		t.Fatalf("expired, presented again: %v", err)
	}
	// Expired entries are swept when a new nonce is asked for: room again,
	// and the swept nonces are unknown.
	d, _, err := s.issue()
	if err != nil || s.outstanding() != 1 {
		t.Fatalf("after expiry: %v, %d held", err, s.outstanding())
	}
	if err := s.take(c); !errors.Is(err, ErrNonceUnknown) {
		t.Fatalf("swept: %v", err)
	}
	if err := s.take(d); err != nil {
		t.Fatalf("fresh nonce: %v", err)
	}
}

func mustP256(t *testing.T) (*ecdh.PrivateKey, []byte) {
	t.Helper()
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(k.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	return k, der
}

func TestWrapUnwrap(t *testing.T) {
	l1, l2 := digest.FromString("layer one"), digest.FromString("layer two")
	keys := map[digest.Digest][]byte{l1: bytes.Repeat([]byte{1}, 32), l2: []byte(`{"symkey":"…","cipheroptions":{}}`)}
	priv, spki := mustP256(t)
	rel, err := WrapKeys(modelA, keys, spki)
	if err != nil {
		t.Fatal(err)
	}
	got, err := rel.Unwrap(priv, modelA)
	if err != nil || len(got) != 2 || !bytes.Equal(got[l1], keys[l1]) || !bytes.Equal(got[l2], keys[l2]) {
		t.Fatalf("round trip: %v %v", got, err)
	}
	for _, k := range rel.Keys {
		if bytes.Contains(k.Wrapped, keys[k.Layer]) {
			t.Fatal("a wrapped key holds its plaintext")
		}
	}
	other, _ := mustP256(t)
	for _, tc := range []struct {
		name   string
		priv   *ecdh.PrivateKey
		model  digest.Digest
		tamper func(*KeyRelease)
	}{
		{"another recipient key", other, modelA, nil},
		{"the release names another model", priv, modelA, func(r *KeyRelease) { r.Model = modelB }},
		// The release relabelled for model B and opened for B: only the
		// HKDF info (which binds the model digest) catches it.
		{"keys wrapped for model A opened as model B", priv, modelB, func(r *KeyRelease) { r.Model = modelB }},
		{"layers swapped", priv, modelA, func(r *KeyRelease) { r.Keys[0].Layer, r.Keys[1].Layer = r.Keys[1].Layer, r.Keys[0].Layer }},
		{"one flipped byte in the ciphertext", priv, modelA, func(r *KeyRelease) { r.Keys[0].Wrapped[gcmNonceSize] ^= 1 }},
		{"one flipped byte in the GCM nonce", priv, modelA, func(r *KeyRelease) { r.Keys[1].Wrapped[0] ^= 1 }},
		{"one flipped byte in the tag", priv, modelA, func(r *KeyRelease) { w := r.Keys[0].Wrapped; w[len(w)-1] ^= 1 }},
		{"truncated", priv, modelA, func(r *KeyRelease) { r.Keys[0].Wrapped = r.Keys[0].Wrapped[:20] }},
		{"another broker key", priv, modelA, func(r *KeyRelease) { _, r.BrokerKey = mustP256(t) }},
		{"a layer twice", priv, modelA, func(r *KeyRelease) { r.Keys = append(r.Keys, r.Keys[0]) }},
		{"another format", priv, modelA, func(r *KeyRelease) { r.Format = "v0" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, _ := json.Marshal(rel)
			var r KeyRelease
			json.Unmarshal(raw, &r)
			if tc.tamper != nil {
				tc.tamper(&r)
			}
			if got, err := r.Unwrap(tc.priv, tc.model); !errors.Is(err, ErrUnwrap) || got != nil {
				t.Fatalf("want ErrUnwrap and no key, got %v %v", got, err)
			}
		})
	}
	// Only P-256 recipients.
	p384, _ := ecdh.P384().GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(p384.PublicKey())
	if _, err := WrapKeys(modelA, keys, der); err == nil || !strings.Contains(err.Error(), "P-384") {
		t.Fatalf("P-384 recipient: %v", err)
	}
}

// brokerFixture is a broker over httptest with the simulated provider's
// chain trusted, a fake model source that passes modelA only, and layer
// keys of modelA.
type brokerFixture struct {
	srv    *httptest.Server
	broker *Broker
	client *BrokerClient
	sim    *Simulated
	clock  *fakeClock
	keys   map[digest.Digest][]byte
	events *bytes.Buffer
	log    *bytes.Buffer
	// modelCalls counts re-verifications.
	modelCalls int
}

func newBrokerFixture(t *testing.T, tune func(*BrokerOptions)) *brokerFixture {
	t.Helper()
	f := &brokerFixture{sim: &Simulated{Dir: t.TempDir()}, clock: &fakeClock{t: time.Now()},
		events: &bytes.Buffer{}, log: &bytes.Buffer{}, keys: map[digest.Digest][]byte{}}
	if _, err := f.sim.Quote(context.Background(), [64]byte{}); err != nil {
		t.Fatal(err)
	}
	roots, err := LoadRoots(f.sim.RootsFile())
	if err != nil {
		t.Fatal(err)
	}
	manifest := &ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest}
	for i := range 3 {
		k := make([]byte, 32)
		rand.Read(k)
		l := digest.FromString(fmt.Sprint("encrypted layer ", i))
		f.keys[l] = k
		manifest.Layers = append(manifest.Layers, ocispec.Descriptor{Digest: l})
	}
	var mu sync.Mutex
	o := BrokerOptions{
		Verify: VerifyOptions{
			Requirements: Requirements{Measurements: []string{hex.EncodeToString(SimulatedMeasurement)}, MinimumTCB: TCB{SNP: 8}},
			Roots:        roots, PolicyDigest: polA,
		},
		Models: func(ctx context.Context, ref string, d digest.Digest) (*VerifiedModel, error) {
			mu.Lock()
			f.modelCalls++
			mu.Unlock()
			rep := &referrers.Report{Repository: "reg.example/m", Model: ocispec.Descriptor{Digest: d}, Policy: polA, Rule: 0,
				Mode: referrers.ModeEnforce, Passed: d == modelA,
				Requirements: []referrers.Requirement{{What: "signatures", Satisfied: d == modelA, Reason: "1 of 1 trusted signer"}}}
			if d != modelA {
				rep.Requirements[0].Reason = "no signature by a trusted signer"
				return &VerifiedModel{Report: rep}, &referrers.PolicyError{Report: rep}
			}
			return &VerifiedModel{Report: rep, Descriptor: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d}, Manifest: manifest}, nil
		},
		Keys: func(ctx context.Context, desc ocispec.Descriptor, m *ocispec.Manifest) (map[digest.Digest][]byte, error) {
			out := map[digest.Digest][]byte{}
			for _, l := range m.Layers {
				out[l.Digest] = f.keys[l.Digest]
			}
			return out, nil
		},
		Events: events.NewWriterSink(f.events),
		Log:    slog.New(slog.NewJSONHandler(f.log, nil)),
		Now:    f.clock.now,
	}
	if tune != nil {
		tune(&o)
	}
	b, err := NewBroker(o)
	if err != nil {
		t.Fatal(err)
	}
	f.broker = b
	f.srv = httptest.NewServer(b)
	t.Cleanup(f.srv.Close)
	f.client = &BrokerClient{URL: f.srv.URL}
	return f
}

// evidence makes simulated evidence for model over a fresh broker nonce,
// binding a fresh ephemeral key, and returns it with the private key.
func (f *brokerFixture) evidence(t *testing.T, model string, sim *Simulated) (*Evidence, *ecdh.PrivateKey) {
	t.Helper()
	n, err := f.client.Nonce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	priv, spki := mustP256(t)
	kh := sha256.Sum256(spki)
	if sim == nil {
		sim = f.sim
	}
	ev, err := Collect(context.Background(), sim, CollectOptions{Reference: "reg.example/m:v1",
		Binding: Binding{ManifestDigest: model, PolicyDigest: polA, Nonce: n, KeyHash: kh[:]}, PublicKey: spki})
	if err != nil {
		t.Fatal(err)
	}
	return ev, priv
}

func (f *brokerFixture) post(t *testing.T, body []byte, contentType string) (int, Refusal) {
	t.Helper()
	resp, err := http.Post(f.srv.URL+PathKey, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r Refusal
	json.NewDecoder(resp.Body).Decode(&r)
	return resp.StatusCode, r
}

// TestBrokerReleasesKeys: the flow through RequestKeys against a broker
// over HTTP: keys come back equal to the broker's, and the decision event
// validates against the schema and holds no key material.
func TestBrokerReleasesKeys(t *testing.T) {
	f := newBrokerFixture(t, nil)
	rel, err := RequestKeys(context.Background(), ReleaseOptions{Broker: f.client, Provider: f.sim,
		Reference: "reg.example/m:v1", ManifestDigest: modelA, PolicyDigest: polA})
	if err != nil {
		t.Fatal(err)
	}
	if len(rel.Keys) != 3 || rel.RequestID == "" {
		t.Fatalf("release: %d keys, request %q", len(rel.Keys), rel.RequestID)
	}
	for l, k := range f.keys {
		if !bytes.Equal(rel.Keys[l], k) {
			t.Fatalf("layer %s: key differs", l)
		}
	}
	ev := regtest.DecisionEvents(t, f.events.Bytes())
	if len(ev) != 1 {
		t.Fatalf("%d events, want 1", len(ev))
	}
	u := ev[0]["data"].(map[string]any)["unmapped"].(map[string]any)
	if u["face"] != "broker" || u["verdict"] != "pass" || u["allowed"] != true || u["correlation_id"] != rel.RequestID {
		t.Fatalf("event: %v", u)
	}
	noKeyMaterial(t, f, f.events.Bytes(), f.log.Bytes())
}

// noKeyMaterial fails when any layer key appears, raw, hex or base64, in
// the given outputs.
func noKeyMaterial(t *testing.T, f *brokerFixture, outputs ...[]byte) {
	t.Helper()
	for _, k := range f.keys {
		for _, form := range [][]byte{k, []byte(hex.EncodeToString(k)), []byte(base64.StdEncoding.EncodeToString(k)),
			[]byte(base64.RawURLEncoding.EncodeToString(k)), []byte(hex.EncodeToString(k[:8]))} {
			for _, out := range outputs {
				if bytes.Contains(out, form) {
					t.Fatalf("key material %q in output:\n%s", form, out)
				}
			}
		}
	}
}

// TestBrokerRefusals: each refusal is a 403 (or the right 4xx) naming the
// failed step, releases nothing, and is one schema-valid event.
func TestBrokerRefusals(t *testing.T) {
	f := newBrokerFixture(t, nil)
	post := func(ev *Evidence) (int, Refusal) {
		body, _ := json.Marshal(KeyRequest{Evidence: ev})
		return f.post(t, body, "application/json")
	}
	for _, tc := range []struct {
		name   string
		status int
		step   string
		reason string
		req    func(t *testing.T) (int, Refusal)
	}{
		{"replayed nonce", 403, StepNonce, "already used", func(t *testing.T) (int, Refusal) {
			ev, _ := f.evidence(t, modelA, nil)
			if code, r := post(ev); code != 200 {
				t.Fatalf("first use: %d %+v", code, r)
			}
			return post(ev)
		}},
		{"a nonce the broker never issued", 403, StepNonce, "not issued", func(t *testing.T) (int, Refusal) {
			ev, _ := f.evidence(t, modelA, nil)
			ev.Nonce = hex.EncodeToString(make([]byte, NonceSize))
			return post(ev)
		}},
		{"an expired nonce", 403, StepNonce, "expired", func(t *testing.T) (int, Refusal) {
			ev, _ := f.evidence(t, modelA, nil)
			f.clock.add(DefaultNonceTTL + time.Second)
			defer f.clock.add(-DefaultNonceTTL - time.Second)
			return post(ev)
		}},
		{"evidence with another key than the one bound", 403, StepReportData, "ephemeral key", func(t *testing.T) (int, Refusal) {
			ev, _ := f.evidence(t, modelA, nil)
			_, ev.PublicKey = mustP256(t)
			return post(ev)
		}},
		{"evidence binding no key", 403, StepEphemeralKey, "no ephemeral key", func(t *testing.T) (int, Refusal) {
			ev, _ := f.evidence(t, modelA, nil)
			ev.PublicKey = nil
			return post(ev)
		}},
		{"a key that is not P-256", 403, StepEphemeralKey, "P-384", func(t *testing.T) (int, Refusal) {
			ev, _ := f.evidence(t, modelA, nil)
			k, _ := ecdh.P384().GenerateKey(rand.Reader)
			ev.PublicKey, _ = x509.MarshalPKIXPublicKey(k.PublicKey())
			return post(ev)
		}},
		{"genuine evidence for a model that fails the policy", 403, StepModel, "no signature by a trusted signer", func(t *testing.T) (int, Refusal) {
			ev, _ := f.evidence(t, modelB, nil)
			return post(ev)
		}},
		{"evidence relabelled to another model", 403, StepReportData, "not the binding", func(t *testing.T) (int, Refusal) {
			ev, _ := f.evidence(t, modelB, nil)
			ev.Model.Digest = modelA
			return post(ev)
		}},
		{"a measurement not allowed", 403, StepMeasurement, "not in the allowlist", func(t *testing.T) (int, Refusal) {
			s := *f.sim
			s.Measurement = make([]byte, 48)
			ev, _ := f.evidence(t, modelA, &s)
			return post(ev)
		}},
		{"the debug bit", 403, StepPolicyBits, "DEBUG", func(t *testing.T) (int, Refusal) {
			s := *f.sim
			s.Debug = true
			ev, _ := f.evidence(t, modelA, &s)
			return post(ev)
		}},
		{"one flipped byte in the report", 403, StepSignature, "does not verify", func(t *testing.T) (int, Refusal) {
			ev, _ := f.evidence(t, modelA, nil)
			ev.Report[0x90] ^= 1
			return post(ev)
		}},
		{"unknown fields", 400, StepRequest, "unknown field", func(t *testing.T) (int, Refusal) {
			return f.post(t, []byte(`{"evidence":{"format":"`+EvidenceFormat+`"},"keys":"please"}`), "application/json")
		}},
		{"two JSON values", 400, StepRequest, "data after", func(t *testing.T) (int, Refusal) {
			ev, _ := f.evidence(t, modelA, nil)
			body, _ := json.Marshal(KeyRequest{Evidence: ev})
			return f.post(t, append(body, body...), "application/json")
		}},
		{"no evidence", 400, StepRequest, "no modelattest-runtime-evidence/v1", func(t *testing.T) (int, Refusal) {
			return f.post(t, []byte(`{}`), "application/json")
		}},
		{"a body over the limit", 413, StepRequest, "over 1048576 bytes", func(t *testing.T) (int, Refusal) {
			return f.post(t, []byte(`{"evidence":{"report":"`+strings.Repeat("A", 2<<20)+`"}}`), "application/json")
		}},
		{"not JSON", 415, StepRequest, "want application/json", func(t *testing.T) (int, Refusal) {
			return f.post(t, []byte(`evidence`), "text/plain")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.events.Reset()
			code, r := tc.req(t)
			if code != tc.status || r.Step != tc.step || !strings.Contains(r.Reason, tc.reason) || r.RequestID == "" {
				t.Fatalf("got %d %+v, want %d at %q with %q", code, r, tc.status, tc.step, tc.reason)
			}
			ev := regtest.DecisionEvents(t, f.events.Bytes())
			last := ev[len(ev)-1]["data"].(map[string]any)
			u := last["unmapped"].(map[string]any)
			if u["face"] != "broker" || u["verdict"] != "fail" || u["allowed"] != false || u["correlation_id"] != r.RequestID ||
				(r.Step == StepNonce && u["model"].(map[string]any)["repository"] != "reg.example/m") ||
				last["severity"] != "High" || !strings.Contains(last["message"].(string), tc.step) {
				t.Fatalf("event: %v", last)
			}
		})
	}
	noKeyMaterial(t, f, f.log.Bytes())
}

// TestBrokerNonceLimits: a client asking for nonces in a loop fills the
// store and gets 503 with Retry-After; expiry frees it. GET is refused.
func TestBrokerNonceLimits(t *testing.T) {
	f := newBrokerFixture(t, func(o *BrokerOptions) { o.MaxNonces, o.NonceTTL = 5, 10*time.Second })
	for range 5 {
		if _, err := f.client.Nonce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	_, err := f.client.Nonce(context.Background())
	var re *RefusalError
	if !errors.As(err, &re) || re.Status != 503 || re.Step != StepNonce || errors.Is(err, ErrRefused) {
		t.Fatalf("sixth nonce: %v", err)
	}
	resp, _ := http.Post(f.srv.URL+PathNonce, "", nil)
	if resp.Header.Get("Retry-After") != "11" {
		t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	resp.Body.Close()
	f.clock.add(10 * time.Second)
	if _, err := f.client.Nonce(context.Background()); err != nil || f.broker.nonces.outstanding() != 1 {
		t.Fatalf("after expiry: %v, %d held", err, f.broker.nonces.outstanding())
	}
	resp, _ = http.Get(f.srv.URL + PathNonce)
	if resp.StatusCode != 405 {
		t.Fatalf("GET nonce: %d", resp.StatusCode)
	}
	resp.Body.Close()
	if f.events.Len() != 0 {
		t.Fatalf("nonce requests are not decisions, yet: %s", f.events)
	}
}

// TestBrokerCouldNotDecide: a registry that cannot be reached is a 503
// (exit 1 for the client), not a 403, and an error event.
func TestBrokerCouldNotDecide(t *testing.T) {
	f := newBrokerFixture(t, func(o *BrokerOptions) {
		o.Models = func(context.Context, string, digest.Digest) (*VerifiedModel, error) {
			return nil, errors.New("dial tcp: connection refused")
		}
	})
	ev, _ := f.evidence(t, modelA, nil)
	_, err := f.client.Keys(context.Background(), ev)
	var re *RefusalError
	if !errors.As(err, &re) || re.Status != 503 || re.Step != StepModel || errors.Is(err, ErrRefused) {
		t.Fatalf("registry down: %v", err)
	}
	e := regtest.DecisionEvents(t, f.events.Bytes())
	if u := e[0]["data"].(map[string]any)["unmapped"].(map[string]any); u["verdict"] != "error" || u["allowed"] != false {
		t.Fatalf("event: %v", u)
	}
}

// The worked example of docs/RUNTIME.md's wrap format, pinned (and checked
// independently with Python's cryptography package when it was written):
// broker scalar 32 × 0x11, recipient scalar 32 × 0x22, model modelA,
// layer modelB, key bytes 00…1f, GCM nonce 12 zero bytes.
func TestWrapWorkedExample(t *testing.T) {
	bpriv, err := ecdh.P256().NewPrivateKey(bytes.Repeat([]byte{0x11}, 32))
	if err != nil {
		t.Fatal(err)
	}
	rpriv, err := ecdh.P256().NewPrivateKey(bytes.Repeat([]byte{0x22}, 32))
	if err != nil {
		t.Fatal(err)
	}
	rspki, _ := x509.MarshalPKIXPublicKey(rpriv.PublicKey())
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i)
	}
	rel, err := wrapKeysWith(modelA, map[digest.Digest][]byte{modelB: key}, rspki, bpriv, bytes.NewReader(make([]byte, 12)))
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := bpriv.ECDH(rpriv.PublicKey())
	info := wrapInfo(modelA, modelB, rel.BrokerKey, rspki)
	k, _ := hkdf.Key(sha256.New, secret, nil, string(info), 32)
	for _, c := range []struct{ what, got, want string }{
		{"Z", hex.EncodeToString(secret), "ccfc261f58193c98ca4ad4a53bbac6f0ee29bc4d48438090446908622ca79af6"},
		{"info length", fmt.Sprint(len(info)), "367"},
		{"K", hex.EncodeToString(k), "dd8df9755fe7b0e0f41d3eef765a03f1eda99e941305a3a2e2507ec73c830cae"},
		{"wrapped", hex.EncodeToString(rel.Keys[0].Wrapped), "000000000000000000000000" +
			"1bc49483c352c1c0aff9f82f02ee27dde7198c8b727593c7d91245cfb1a7bee2" + "ce1bffbed6655f3288cadc0a86c2ffe0"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %s, want %s", c.what, c.got, c.want)
		}
	}
	got, err := rel.Unwrap(rpriv, modelA)
	if err != nil || !bytes.Equal(got[modelB], key) {
		t.Fatalf("unwrap: %v", err)
	}
}

// TestNonceStoreConcurrent: many clients issuing and presenting nonces at
// once; each nonce is accepted exactly once (run with -race).
func TestNonceStoreConcurrent(t *testing.T) {
	s := newNonceStore(time.Minute, 1000, time.Now)
	var issued [][]byte
	for range 200 {
		n, _, err := s.issue()
		if err != nil {
			t.Fatal(err)
		}
		issued = append(issued, n)
	}
	var mu sync.Mutex
	accepted := map[string]int{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for _, n := range issued {
				if s.take(n) == nil {
					mu.Lock()
					accepted[string(n)]++
					mu.Unlock()
				}
				s.issue()
			}
		})
	}
	wg.Wait()
	if len(accepted) != len(issued) {
		t.Fatalf("%d of %d nonces accepted", len(accepted), len(issued))
	}
	for _, c := range accepted {
		if c != 1 {
			t.Fatalf("a nonce accepted %d times", c)
		}
	}
}

// TestBrokerListenAndServe: the broker over TLS on a free port; a
// cancelled context shuts it down cleanly.
func TestBrokerListenAndServe(t *testing.T) {
	f := newBrokerFixture(t, nil)
	cert, key := regtest.SelfSignedCert(t, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- f.broker.ListenAndServe(ctx, BrokerServeOptions{Address: "127.0.0.1:0", CertFile: cert, KeyFile: key,
			Listening: func(a net.Addr) { addr <- a.String() }})
	}()
	pem, _ := os.ReadFile(cert)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c := &BrokerClient{URL: "https://" + <-addr, HTTP: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}
	if _, err := c.Nonce(context.Background()); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no shutdown")
	}
}
