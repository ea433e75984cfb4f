package audit

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelattest/modelattest/oras"
)

// transport counts the run's registry requests and spaces them to at most
// maxRPS per second. It sits under oras-go's retries, so every attempt is
// counted and paced, and a 429's Retry-After is honoured by the retry
// policy above it.
type transport struct {
	base     http.RoundTripper
	interval time.Duration
	requests atomic.Int64
	mu       sync.Mutex
	next     time.Time
}

func newTransport(o oras.RemoteOptions, maxRPS float64) (*transport, error) {
	t := &transport{}
	if maxRPS > 0 {
		t.interval = time.Duration(float64(time.Second) / maxRPS)
	}
	if o.HTTPClient != nil && o.HTTPClient.Transport != nil {
		t.base = o.HTTPClient.Transport
		return t, nil
	}
	tr, err := oras.NewTransport(o)
	if err != nil {
		return nil, err
	}
	t.base = tr
	return t, nil
}

func (t *transport) client() *http.Client { return &http.Client{Transport: t} }

// RoundTrip waits for the request's slot, then sends it.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.interval > 0 {
		if err := t.wait(req.Context()); err != nil {
			return nil, err
		}
	}
	t.requests.Add(1)
	return t.base.RoundTrip(req)
}

func (t *transport) wait(ctx context.Context) error {
	t.mu.Lock()
	now := time.Now()
	slot := t.next
	if slot.Before(now) {
		slot = now
	}
	t.next = slot.Add(t.interval)
	t.mu.Unlock()
	if d := time.Until(slot); d > 0 {
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
