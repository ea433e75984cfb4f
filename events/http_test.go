package events_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelattest/modelattest/events"
	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/referrers"
)

// collector is a test event collector. fail decides, per request number
// (from 0), whether to fail it and how: "before" answers 503 without
// reading, "after" records the events and then answers 500, "cut" records
// them and closes the connection without an answer.
type collector struct {
	*httptest.Server
	mu       sync.Mutex
	n        int
	ids      map[string]int // id → times received
	ctypes   map[string]bool
	headers  []http.Header
	bodies   [][]byte
	fail     func(n int) string
	format   events.Format
	t        *testing.T
	received atomic.Int64
}

func newCollector(t *testing.T, format events.Format, fail func(n int) string) *collector {
	c := &collector{ids: map[string]int{}, ctypes: map[string]bool{}, fail: fail, format: format, t: t}
	c.Server = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.Close)
	return c
}

func (c *collector) serve(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	n := c.n
	c.n++
	c.mu.Unlock()
	how := c.fail(n)
	if how == "before" {
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	body, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	c.ctypes[r.Header.Get("Content-Type")] = true
	c.headers = append(c.headers, r.Header.Clone())
	c.bodies = append(c.bodies, body)
	for _, e := range c.decode(body) {
		c.ids[e]++
		c.received.Add(1)
	}
	c.mu.Unlock()
	switch how {
	case "after":
		http.Error(w, "stored, then failed", http.StatusInternalServerError)
	case "cut":
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	default:
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, `{"text":"Success","code":0}`)
	}
}

// decode returns the event ids in a body of the collector's format, after
// checking each event against the schema.
func (c *collector) decode(body []byte) []string {
	var evs []json.RawMessage
	switch c.format {
	case events.FormatCloudEvents:
		evs = []json.RawMessage{body}
	case events.FormatCloudEventsBatch:
		if err := json.Unmarshal(body, &evs); err != nil {
			c.t.Errorf("batch body: %v", err)
		}
	case events.FormatSplunkHEC:
		dec := json.NewDecoder(bytes.NewReader(body))
		for dec.More() {
			var h struct {
				Time       float64         `json:"time"`
				SourceType string          `json:"sourcetype"`
				Event      json.RawMessage `json:"event"`
			}
			if err := dec.Decode(&h); err != nil {
				c.t.Errorf("HEC body: %v", err)
				break
			}
			if h.SourceType != events.HECSourceType || h.Time < 1e9 {
				c.t.Errorf("HEC envelope: %+v", h)
			}
			evs = append(evs, h.Event)
		}
	}
	var ids []string
	for _, e := range evs {
		regtest.CheckDecisionEvent(c.t, e)
		var m struct{ ID string }
		json.Unmarshal(e, &m)
		ids = append(ids, m.ID)
	}
	return ids
}

var wantCType = map[events.Format]string{
	events.FormatCloudEvents:      "application/cloudevents+json; charset=utf-8",
	events.FormatCloudEventsBatch: "application/cloudevents-batch+json; charset=utf-8",
	events.FormatSplunkHEC:        "application/json",
}

// TestHTTPSinkAtLeastOnce: against a collector that fails half of its
// requests, a quarter before taking the events and a quarter after (an
// error answer or a cut connection), every event arrives at least once
// with its stable id, or is counted as dropped: nothing is lost silently.
// Events taken before a failure arrive again with the same id.
func TestHTTPSinkAtLeastOnce(t *testing.T) {
	for _, f := range events.Formats {
		t.Run(string(f), func(t *testing.T) {
			c := newCollector(t, f, func(n int) string {
				return [...]string{"before", "ok", "after", "ok", "cut", "ok", "before", "ok"}[n%8]
			})
			h, _ := events.ParseHeaders("Authorization=Splunk%20hec-token-42")
			s, err := events.NewHTTPSink(events.HTTPOptions{URL: c.URL, Format: f, Headers: h, BatchSize: 7,
				MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond, Linger: 5 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			const total = 150
			var sent []events.Event
			for i := range total {
				e := events.FromReport(report(i%3 != 0, referrers.ModeEnforce), events.Options{Face: events.FaceAudit, CorrelationID: "run-1"})
				sent = append(sent, e)
				s.Emit(e)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cerr := s.Close(ctx)
			st := s.Stats()
			if st.Emitted != total || st.Delivered+st.Dropped != total {
				t.Fatalf("stats %+v: every event must end delivered or dropped", st)
			}
			if (st.Dropped > 0) != (cerr != nil) {
				t.Errorf("Close: %v with %d dropped", cerr, st.Dropped)
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			missing, dup := 0, 0
			for _, e := range sent {
				switch n := c.ids[e.ID]; {
				case n == 0:
					missing++
				case n > 1:
					dup++
				}
			}
			if int64(missing) > st.Dropped {
				t.Errorf("%d events never arrived but only %d counted dropped", missing, st.Dropped)
			}
			if dup == 0 {
				t.Errorf("no event arrived twice: the after-taking failures were not retried")
			}
			if st.Retries == 0 {
				t.Errorf("no retries counted")
			}
			if len(c.ctypes) != 1 || !c.ctypes[wantCType[f]] {
				t.Errorf("content types %v, want %s", c.ctypes, wantCType[f])
			}
			for _, h := range c.headers {
				if h.Get("Authorization") != "Splunk hec-token-42" {
					t.Fatalf("request without the configured header: %v", h)
				}
			}
			// The token goes in the header, never into an event.
			for _, b := range c.bodies {
				if bytes.Contains(b, []byte("hec-token-42")) {
					t.Fatalf("the HEC token is in a body:\n%s", b)
				}
			}
			t.Logf("%s: %d requests, %d delivered, %d dropped, %d retries, %d arrived twice or more", f, c.n, st.Delivered, st.Dropped, st.Retries, dup)
		})
	}
}

// TestHTTPSinkCountsWhatItCannotDeliver: a collector that always fails,
// one that refuses the body (4xx: not retried), and one that never answers
// within Close's deadline: every event is counted dropped and Close ends.
func TestHTTPSinkCountsWhatItCannotDeliver(t *testing.T) {
	release := make(chan struct{})
	for name, h := range map[string]http.HandlerFunc{
		"always 500": func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) },
		"400":        func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(400) },
		"hangs":      func(w http.ResponseWriter, r *http.Request) { <-release },
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			if name == "hangs" {
				t.Cleanup(func() { close(release) }) // runs before srv.Close
			}
			var requests atomic.Int64
			client := &http.Client{Transport: roundTripCounter{http.DefaultTransport, &requests}}
			s, err := events.NewHTTPSink(events.HTTPOptions{URL: srv.URL, Format: events.FormatCloudEventsBatch, Client: client,
				MaxAttempts: 3, MinBackoff: time.Millisecond, Linger: time.Minute}) // one batch: Close ends the linger
			if err != nil {
				t.Fatal(err)
			}
			for range 20 {
				s.Emit(events.FromReport(report(true, referrers.ModeEnforce), events.Options{}))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			if err := s.Close(ctx); err == nil || !strings.Contains(err.Error(), "20 of 20 not delivered") {
				t.Errorf("Close: %v", err)
			}
			st := s.Stats()
			if st.Dropped != 20 || st.Delivered != 0 {
				t.Errorf("stats %+v", st)
			}
			if name == "400" && requests.Load() != 1 {
				t.Errorf("%d requests: a 400 must not be retried", requests.Load())
			}
			if name == "always 500" && requests.Load() != 3 {
				t.Errorf("%d requests, want MaxAttempts = 3", requests.Load())
			}
		})
	}
}

type roundTripCounter struct {
	rt http.RoundTripper
	n  *atomic.Int64
}

func (r roundTripCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	r.n.Add(1)
	return r.rt.RoundTrip(req)
}

// TestHTTPSinkEmitNeverWaits: with a collector that never answers and a
// queue of 10, a thousand Emits return (the test would hang otherwise) and
// what did not fit is counted dropped at once.
func TestHTTPSinkEmitNeverWaits(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	s, err := events.NewHTTPSink(events.HTTPOptions{URL: srv.URL, QueueSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	e := events.FromReport(report(true, referrers.ModeEnforce), events.Options{})
	for range 1000 {
		s.Emit(e)
	}
	if st := s.Stats(); st.Emitted != 1000 || st.Dropped < 1000-11 {
		t.Errorf("stats %+v: the queue holds 10 (+1 in flight)", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	s.Close(ctx)
	if st := s.Stats(); st.Dropped != 1000 {
		t.Errorf("after Close: %+v", st)
	}
	s.Emit(e) // after Close: counted, not a panic
	if st := s.Stats(); st.Dropped != 1001 {
		t.Errorf("emit after Close: %+v", st)
	}
}

// TestHTTPSinkHonoursRetryAfter: a 429 with Retry-After: 1 delays the next
// attempt by a second, not by the 1 ms backoff.
func TestHTTPSinkHonoursRetryAfter(t *testing.T) {
	var mu sync.Mutex
	var times []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		times = append(times, time.Now())
		first := len(times) == 1
		mu.Unlock()
		if first {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	}))
	t.Cleanup(srv.Close)
	s, _ := events.NewHTTPSink(events.HTTPOptions{URL: srv.URL, MinBackoff: time.Millisecond})
	s.Emit(events.FromReport(report(true, referrers.ModeEnforce), events.Options{}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if len(times) != 2 || times[1].Sub(times[0]) < 900*time.Millisecond {
		t.Errorf("attempts at %v", times)
	}
}

// TestHTTPSinkMutualTLS: with the collector's CA and a client certificate
// the events arrive; without the certificate the collector refuses the
// handshake and the events are counted dropped.
func TestHTTPSinkMutualTLS(t *testing.T) {
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "client CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	caCert, _ := x509.ParseCertificate(caDER)
	clKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	clTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "modelattest"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	clDER, _ := x509.CreateCertificate(rand.Reader, clTmpl, caCert, clKey.Public(), caKey)
	kb, _ := x509.MarshalPKCS8PrivateKey(clKey)
	certFile, keyFile := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: clDER}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600)

	var got atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got.Add(1) }))
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile := filepath.Join(dir, "collector-ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)

	for name, c := range map[string]struct {
		cert, key string
		want      int64
	}{"with client cert": {certFile, keyFile, 1}, "without": {"", "", 0}} {
		t.Run(name, func(t *testing.T) {
			got.Store(0)
			s, err := events.Open(events.Config{URL: srv.URL, CAFile: caFile, CertFile: c.cert, KeyFile: c.key}, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			s.Emit(events.FromReport(report(true, referrers.ModeEnforce), events.Options{}))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s.Close(ctx)
			if st := s.Stats(); got.Load() != c.want || st.Delivered != c.want || st.Dropped != 1-c.want {
				t.Errorf("collector got %d, stats %+v", got.Load(), st)
			}
		})
	}
	if _, err := events.TLSConfig(caFile, certFile, ""); err == nil {
		t.Error("a certificate without its key was accepted")
	}
}

// TestOpenConfig: file and stdout sinks write schema-valid JSON lines;
// URLs with credentials and unknown formats are refused without echoing
// the secret.
func TestOpenConfig(t *testing.T) {
	dir := t.TempDir()
	var stdout bytes.Buffer
	s, err := events.Open(events.Config{File: "-"}, &stdout)
	if err != nil {
		t.Fatal(err)
	}
	f, err := events.Open(events.Config{File: filepath.Join(dir, "events.jsonl")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, sink := range []events.Sink{s, f} {
		sink.Emit(events.FromReport(report(true, referrers.ModeEnforce), events.Options{}))
		sink.Emit(events.FromReport(report(false, referrers.ModeWarn), events.Options{}))
		if err := sink.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	file, _ := os.ReadFile(filepath.Join(dir, "events.jsonl"))
	for _, b := range [][]byte{stdout.Bytes(), file} {
		if n := len(regtest.DecisionEvents(t, b)); n != 2 {
			t.Errorf("%d events:\n%s", n, b)
		}
		if sc := bufio.NewScanner(bytes.NewReader(b)); !sc.Scan() || !strings.HasPrefix(sc.Text(), `{"specversion":"1.0"`) {
			t.Errorf("not one event per line:\n%s", b)
		}
	}
	if fi, _ := os.Stat(filepath.Join(dir, "events.jsonl")); fi.Mode().Perm() != 0o600 {
		t.Errorf("events file mode %v", fi.Mode())
	}
	for _, c := range []events.Config{
		{URL: "https://user:hunter2@collector.example/events"},
		{URL: "ftp://collector.example/"},
		{URL: "https://collector.example/", Format: "syslog"},
	} {
		if _, err := events.Open(c, nil); err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%+v: %v", c, err)
		}
	}
	if s, _ := events.Open(events.Config{}, nil); s != (events.Discard{}) {
		t.Errorf("empty config gave %T", s)
	}
	cfg, err := events.ConfigFromEnv(func(k string) (string, bool) {
		v, ok := map[string]string{events.EnvURL: "https://c.example/", events.EnvFormat: "splunk-hec", events.EnvHeaders: "Authorization=Splunk%20t"}[k]
		return v, ok
	})
	if err != nil || cfg.URL != "https://c.example/" || cfg.Format != events.FormatSplunkHEC || cfg.Headers.Get("Authorization") != "Splunk t" {
		t.Errorf("%+v %v", cfg, err)
	}
}

// BenchmarkFromReportEmit: what a decision pays for its event — building
// it and queueing it on an HTTP sink (delivery happens on the sink's own
// goroutine). Compare with verify's own latency (BenchmarkVerifyEventSink,
// docs/PERFORMANCE.md).
func BenchmarkFromReportEmit(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
	b.Cleanup(srv.Close)
	s, err := events.NewHTTPSink(events.HTTPOptions{URL: srv.URL, Format: events.FormatCloudEventsBatch, QueueSize: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	rep := report(true, referrers.ModeEnforce)
	for b.Loop() {
		s.Emit(events.FromReport(rep, events.Options{Face: events.FaceVerify}))
	}
	b.StopTimer()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s.Close(ctx)
}
