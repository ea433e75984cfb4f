package events

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"
)

// Format is the shape of the HTTP request body.
type Format string

// Body formats of an HTTPSink.
const (
	// FormatCloudEvents is CloudEvents structured mode: one event per
	// request, Content-Type application/cloudevents+json.
	FormatCloudEvents Format = "cloudevents"
	// FormatCloudEventsBatch is CloudEvents batched mode: a JSON array of
	// events, Content-Type application/cloudevents-batch+json.
	FormatCloudEventsBatch Format = "cloudevents-batch"
	// FormatSplunkHEC is Splunk's HTTP Event Collector: one
	// {"time","source","sourcetype","event"} object per event, concatenated.
	FormatSplunkHEC Format = "splunk-hec"
)

// Formats lists every Format, for usage messages.
var Formats = []Format{FormatCloudEvents, FormatCloudEventsBatch, FormatSplunkHEC}

// HTTPOptions configure an HTTPSink. Zero fields take the defaults named.
type HTTPOptions struct {
	// URL is where events are POSTed (required, http or https).
	URL string
	// Format is the body shape (zero: FormatCloudEvents).
	Format Format
	// Headers go with every request (zero: none).
	Headers http.Header
	// TLS configures https (zero: system roots).
	TLS *tls.Config
	// Client sends the requests (zero: a client with TLS above and a 10 s
	// timeout per request). Its redirect policy is replaced: a redirect to
	// another scheme or host is not followed.
	Client *http.Client
	// QueueSize bounds the events waiting for delivery (zero: 1000); what
	// does not fit is dropped and counted.
	QueueSize int
	// BatchSize bounds the events in one request (zero: 50; always 1 for
	// FormatCloudEvents).
	BatchSize int
	// Linger is how long a partial batch waits for more events (zero: 100 ms).
	Linger time.Duration
	// MaxAttempts bounds the requests for one batch (zero: 5).
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the exponential wait between
	// attempts (zero: 100 ms and 5 s). A 429's or 503's Retry-After is
	// honoured up to MaxBackoff.
	MinBackoff, MaxBackoff time.Duration
}

// HTTPSink delivers events to a collector over HTTP, at least once: a
// batch is retried with backoff until it is acknowledged with a 2xx, so a
// collector may see an event twice and deduplicates on its stable id.
// What cannot be delivered (queue full, attempts used up, permanent
// refusal, Close's deadline) is counted as dropped.
type HTTPSink struct {
	o      HTTPOptions
	queue  chan Event
	mu     sync.RWMutex
	closed bool
	stop   context.Context
	abort  context.CancelFunc
	done   chan struct{}
	n      counters
}

// NewHTTPSink starts the sink's delivery goroutine; Close stops it.
func NewHTTPSink(o HTTPOptions) (*HTTPSink, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("events URL %q: want an http:// or https:// URL", redactURL(o.URL))
	}
	if u.User != nil {
		return nil, fmt.Errorf("events URL %s: credentials in the URL are refused: pass them as a header in $%s", redactURL(o.URL), EnvHeaders)
	}
	if o.Format == "" {
		o.Format = FormatCloudEvents
	}
	switch o.Format {
	case FormatCloudEvents, FormatCloudEventsBatch, FormatSplunkHEC:
	default:
		return nil, fmt.Errorf("events format %q: want %s, %s or %s", o.Format, FormatCloudEvents, FormatCloudEventsBatch, FormatSplunkHEC)
	}
	if o.Client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = o.TLS
		o.Client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}
	// Headers are credentials of the collector's host (DESIGN.md rule 9):
	// net/http would re-send them (and the events) to whatever host a
	// redirect names, so a redirect elsewhere ends the request. The
	// caller's client is copied, not changed.
	c := *o.Client
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Scheme != u.Scheme || req.URL.Host != u.Host {
			return http.ErrUseLastResponse
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	o.Client = &c
	if o.QueueSize <= 0 {
		o.QueueSize = 1000
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 50
	}
	if o.Format == FormatCloudEvents {
		o.BatchSize = 1
	}
	if o.Linger <= 0 {
		o.Linger = 100 * time.Millisecond
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
	s := &HTTPSink{o: o, queue: make(chan Event, o.QueueSize), done: make(chan struct{})}
	s.stop, s.abort = context.WithCancel(context.Background())
	go s.run()
	return s, nil
}

// Emit queues the event, or counts it as dropped when the queue is full or
// the sink closed. It never waits.
func (s *HTTPSink) Emit(e Event) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.n.emitted.Add(1)
	if s.closed {
		s.n.dropped.Add(1)
		return
	}
	select {
	case s.queue <- e:
	default:
		s.n.dropped.Add(1)
	}
}

// Close stops taking events and delivers the queue until ctx ends; what is
// left then is counted as dropped. It returns an error naming the count
// when anything was dropped.
func (s *HTTPSink) Close(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.queue)
	}
	s.mu.Unlock()
	select {
	case <-s.done:
	case <-ctx.Done():
		s.abort() // in-flight request and backoff end now; the rest is dropped
		<-s.done
	}
	s.abort()
	if d := s.n.dropped.Load(); d > 0 {
		return fmt.Errorf("events: %d of %d not delivered to %s", d, s.n.emitted.Load(), redactURL(s.o.URL))
	}
	return nil
}

// Stats counts emitted, delivered, dropped and retried.
func (s *HTTPSink) Stats() Stats { return s.n.stats() }

func (s *HTTPSink) run() {
	defer close(s.done)
	for {
		e, ok := <-s.queue
		if !ok {
			return
		}
		batch := []Event{e}
		timer := time.NewTimer(s.o.Linger)
	fill:
		for len(batch) < s.o.BatchSize {
			select {
			case e, ok := <-s.queue:
				if !ok {
					break fill
				}
				batch = append(batch, e)
			case <-timer.C:
				break fill
			}
		}
		timer.Stop()
		s.deliver(batch)
	}
}

// deliver sends one batch, retrying, and counts it delivered or dropped.
func (s *HTTPSink) deliver(batch []Event) {
	body, ctype, err := encode(s.o.Format, batch)
	if err != nil {
		s.n.dropped.Add(int64(len(batch)))
		return
	}
	wait := s.o.MinBackoff
	for attempt := 1; ; attempt++ {
		if s.stop.Err() != nil {
			break
		}
		retry, after := s.post(body, ctype)
		if !retry && after < 0 {
			s.n.delivered.Add(int64(len(batch)))
			return
		}
		if !retry || attempt >= s.o.MaxAttempts {
			break
		}
		s.n.retries.Add(1)
		if after > 0 {
			wait = min(after, s.o.MaxBackoff)
		}
		select {
		case <-time.After(wait):
		case <-s.stop.Done():
		}
		wait = min(2*wait, s.o.MaxBackoff)
	}
	s.n.dropped.Add(int64(len(batch)))
}

// post makes one request. It returns (false, -1) on success, (true, wait)
// for a failure worth retrying (wait > 0 from Retry-After), and (false, 0)
// for a permanent refusal.
func (s *HTTPSink) post(body []byte, ctype string) (retry bool, after time.Duration) {
	req, err := http.NewRequestWithContext(s.stop, http.MethodPost, s.o.URL, bytes.NewReader(body))
	if err != nil {
		return false, 0
	}
	for k, vs := range s.o.Headers {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", ctype)
	resp, err := s.o.Client.Do(req)
	if err != nil {
		return true, 0 // connection refused, reset, timed out: the collector may or may not have it
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, -1
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		return true, retryAfter(resp.Header.Get("Retry-After"))
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout:
		return true, 0
	}
	return false, 0 // 4xx: the collector refuses this body; resending it cannot help
}

func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// hecEvent is Splunk HEC's event envelope.
type hecEvent struct {
	Time       float64 `json:"time"`
	Source     string  `json:"source"`
	SourceType string  `json:"sourcetype"`
	Event      Event   `json:"event"`
}

// HECSourceType is the Splunk sourcetype of decision events.
const HECSourceType = "modelattest:decision"

func encode(f Format, batch []Event) ([]byte, string, error) {
	switch f {
	case FormatCloudEvents:
		b, err := json.Marshal(batch[0])
		return b, "application/cloudevents+json; charset=utf-8", err
	case FormatCloudEventsBatch:
		b, err := json.Marshal(batch)
		return b, "application/cloudevents-batch+json; charset=utf-8", err
	case FormatSplunkHEC:
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		for _, e := range batch {
			h := hecEvent{Time: float64(e.Time.UnixMilli()) / 1000, Source: e.Source, SourceType: HECSourceType, Event: e}
			if err := enc.Encode(h); err != nil {
				return nil, "", err
			}
		}
		return buf.Bytes(), "application/json", nil
	}
	return nil, "", fmt.Errorf("events format %q", f)
}

// TLSConfig builds the client TLS settings for a collector: extra CA
// certificates from caFile and a client certificate for mTLS. All empty
// gives nil (Go's defaults).
func TLSConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	if caFile == "" && certFile == "" && keyFile == "" {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("events CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("events CA file %s: no PEM certificate in it", caFile)
		}
		c.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("events client certificate: give both the certificate and its key")
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("events client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// redactURL drops user info and the query (which may hold a token).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "REDACTED"
	}
	return u.String()
}
