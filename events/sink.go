package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
)

// Sink receives decision events. Emit never waits for delivery: a decision
// is never delayed by where its event goes.
type Sink interface {
	// Emit hands one event to the sink.
	Emit(e Event)
	// Close delivers what is still queued until ctx ends, then counts the
	// rest as dropped and releases the sink.
	Close(ctx context.Context) error
	// Stats counts what happened to the events emitted so far.
	Stats() Stats
}

// Stats counts events. Once a sink is closed, every emitted event is
// either delivered or dropped: Emitted == Delivered + Dropped.
type Stats struct {
	Emitted   int64 `json:"emitted"`
	Delivered int64 `json:"delivered"`
	Dropped   int64 `json:"dropped"`
	// Retries counts repeated requests (HTTP sinks only).
	Retries int64 `json:"retries"`
}

type counters struct{ emitted, delivered, dropped, retries atomic.Int64 }

func (c *counters) stats() Stats {
	return Stats{Emitted: c.emitted.Load(), Delivered: c.delivered.Load(), Dropped: c.dropped.Load(), Retries: c.retries.Load()}
}

// WriterSink writes each event as one JSON line (JSON Lines) to a writer.
type WriterSink struct {
	mu  sync.Mutex
	w   io.Writer
	c   io.Closer
	err error
	n   counters
}

// NewWriterSink writes JSON lines to w; Close closes w when it is an
// io.Closer other than os.Stdout.
func NewWriterSink(w io.Writer) *WriterSink {
	s := &WriterSink{w: w}
	if c, ok := w.(io.Closer); ok && w != io.Writer(os.Stdout) {
		s.c = c
	}
	return s
}

// OpenFile appends JSON lines to the file at path (created 0600).
func OpenFile(path string) (*WriterSink, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("events file: %w", err)
	}
	return NewWriterSink(f), nil
}

// Emit writes the event as one line. A write error is kept for Close and
// the event counted as dropped.
func (s *WriterSink) Emit(e Event) {
	b, err := json.Marshal(e)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n.emitted.Add(1)
	if err == nil {
		_, err = s.w.Write(append(b, '\n'))
	}
	if err != nil {
		s.n.dropped.Add(1)
		if s.err == nil {
			s.err = fmt.Errorf("write event: %w", err)
		}
		return
	}
	s.n.delivered.Add(1)
}

// Close closes the file and reports the first write error.
func (s *WriterSink) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.err
	if s.c != nil {
		if cerr := s.c.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close events file: %w", cerr)
		}
		s.c = nil
	}
	return err
}

// Stats counts the lines written and the lines lost.
func (s *WriterSink) Stats() Stats { return s.n.stats() }

// Multi sends every event to each sink.
type Multi []Sink

// Emit hands e to each sink.
func (m Multi) Emit(e Event) {
	for _, s := range m {
		s.Emit(e)
	}
}

// Close closes each sink (all of them, sharing ctx) and joins the errors.
func (m Multi) Close(ctx context.Context) error {
	var errs []error
	for _, s := range m {
		errs = append(errs, s.Close(ctx))
	}
	return errors.Join(errs...)
}

// Stats adds up the sinks' counts.
func (m Multi) Stats() Stats {
	var t Stats
	for _, s := range m {
		st := s.Stats()
		t.Emitted += st.Emitted
		t.Delivered += st.Delivered
		t.Dropped += st.Dropped
		t.Retries += st.Retries
	}
	return t
}

// Discard is a sink that counts and drops nothing: no sink configured.
type Discard struct{}

// Emit does nothing.
func (Discard) Emit(Event) {}

// Close does nothing.
func (Discard) Close(context.Context) error { return nil }

// Stats is all zero.
func (Discard) Stats() Stats { return Stats{} }

// Environment variables a Config can be read from (ConfigFromEnv).
const (
	EnvFile    = "MODELATTEST_EVENTS"
	EnvURL     = "MODELATTEST_EVENTS_URL"
	EnvFormat  = "MODELATTEST_EVENTS_FORMAT"
	EnvHeaders = "MODELATTEST_EVENTS_HEADERS"
	EnvCAFile  = "MODELATTEST_EVENTS_CA_FILE"
	EnvCert    = "MODELATTEST_EVENTS_CERT"
	EnvKey     = "MODELATTEST_EVENTS_KEY"
)

// Config says where events go. The zero value sends them nowhere.
type Config struct {
	// File is a path that receives JSON lines, or "-" for stdout.
	File string
	// URL is an HTTP(S) collector; the HTTP options below apply to it.
	URL string
	// Format is the HTTP body shape (zero: FormatCloudEvents).
	Format Format
	// Headers are sent with every request (e.g. Authorization). They come
	// from the environment, never from a command-line flag.
	Headers http.Header
	// CAFile, CertFile and KeyFile are the collector's CA and the client
	// certificate for mTLS (zero: system roots, no client certificate).
	CAFile, CertFile, KeyFile string
}

// ConfigFromEnv reads a Config from the MODELATTEST_EVENTS* variables
// through lookup (os.LookupEnv in a program).
func ConfigFromEnv(lookup func(string) (string, bool)) (Config, error) {
	get := func(k string) string { v, _ := lookup(k); return v }
	c := Config{File: get(EnvFile), URL: get(EnvURL), Format: Format(get(EnvFormat)),
		CAFile: get(EnvCAFile), CertFile: get(EnvCert), KeyFile: get(EnvKey)}
	h, err := ParseHeaders(get(EnvHeaders))
	if err != nil {
		return c, fmt.Errorf("$%s: %w", EnvHeaders, err)
	}
	c.Headers = h
	return c, nil
}

// ParseHeaders reads "Name=value,Name2=value2" (OpenTelemetry's
// OTEL_EXPORTER_OTLP_HEADERS form; values may be percent-encoded, so a
// comma is %2C). The error never quotes a value: values are secrets.
func ParseHeaders(s string) (http.Header, error) {
	h := http.Header{}
	for i, part := range strings.Split(s, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		name, value, ok := strings.Cut(part, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t:") {
			return nil, fmt.Errorf("header %d: want Name=value", i+1)
		}
		v, err := url.PathUnescape(strings.TrimSpace(value))
		if err != nil {
			return nil, fmt.Errorf("header %q: bad percent-encoding", name)
		}
		h.Add(name, v)
	}
	return h, nil
}

// Open builds the sink a Config describes: a file sink, an HTTP sink, both
// (Multi), or Discard. stdout is where "-" writes.
func Open(c Config, stdout io.Writer) (Sink, error) {
	var sinks Multi
	switch c.File {
	case "":
	case "-":
		sinks = append(sinks, &WriterSink{w: stdout})
	default:
		f, err := OpenFile(c.File)
		if err != nil {
			return nil, err
		}
		sinks = append(sinks, f)
	}
	if c.URL != "" {
		tc, err := TLSConfig(c.CAFile, c.CertFile, c.KeyFile)
		if err != nil {
			_ = sinks.Close(context.Background())
			return nil, err
		}
		h, err := NewHTTPSink(HTTPOptions{URL: c.URL, Format: c.Format, Headers: c.Headers, TLS: tc})
		if err != nil {
			_ = sinks.Close(context.Background())
			return nil, err
		}
		sinks = append(sinks, h)
	}
	switch len(sinks) {
	case 0:
		return Discard{}, nil
	case 1:
		return sinks[0], nil
	}
	return sinks, nil
}
