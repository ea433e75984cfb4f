package regtest

import (
	"bytes"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Proxy is a reverse proxy in front of a real registry that counts requests
// and can fault or tamper with them: it stands for a hostile registry or a
// man in the middle.
type Proxy struct {
	// Host is the proxy's host:port.
	Host string

	mu     sync.Mutex
	counts map[string]int
	// Fault, when set, may answer a request itself (a status code other
	// than 0) instead of passing it on.
	fault func(r *http.Request) int
	// Tamper, when set, may rewrite a response body.
	tamper func(r *http.Request, body []byte) []byte
	// drop, when set, says after how many response body bytes to cut the
	// connection (a negative number: do not cut).
	drop func(r *http.Request) int64
	// delay, when set, says how long to stall before answering.
	delay func(r *http.Request) time.Duration
	// challenge is the WWW-Authenticate header sent with a faulted 401.
	challenge string
}

// NewProxy starts a proxy in front of the registry at host.
func NewProxy(t testing.TB, host string) *Proxy {
	t.Helper()
	p := &Proxy{counts: map[string]int{}}
	target, _ := url.Parse("http://" + host)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ErrorLog = log.New(io.Discard, "", 0)
	rp.ModifyResponse = func(resp *http.Response) error {
		p.mu.Lock()
		tamper := p.tamper
		p.mu.Unlock()
		if tamper == nil || resp.Request.Method != http.MethodGet {
			return nil
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		changed := tamper(resp.Request, bytes.Clone(body))
		if !bytes.Equal(changed, body) {
			// A lying registry also lies about the digest of what it sends.
			resp.Header.Del("Docker-Content-Digest")
		}
		body = changed
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
		return nil
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.counts[r.Method+" "+r.URL.Path]++
		fault, drop, delay := p.fault, p.drop, p.delay
		p.mu.Unlock()
		if delay != nil {
			time.Sleep(delay(r))
		}
		if fault != nil {
			if code := fault(r); code != 0 {
				if code < 0 { // a 401 that carries the registry's challenge
					code = -code
					p.mu.Lock()
					w.Header().Set("WWW-Authenticate", p.challenge)
					p.mu.Unlock()
				}
				if code == http.StatusTooManyRequests {
					w.Header().Set("Retry-After", "1")
				}
				w.WriteHeader(code)
				return
			}
		}
		if drop != nil {
			if n := drop(r); n >= 0 {
				w = &cuttingWriter{ResponseWriter: w, left: n}
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.Host = strings.TrimPrefix(srv.URL, "http://")
	return p
}

// SetFault sets (or with nil clears) the fault function.
func (p *Proxy) SetFault(f func(r *http.Request) int) {
	p.mu.Lock()
	p.fault = f
	p.mu.Unlock()
}

// SetTamper sets (or with nil clears) the tamper function.
func (p *Proxy) SetTamper(f func(r *http.Request, body []byte) []byte) {
	p.mu.Lock()
	p.tamper = f
	p.mu.Unlock()
}

// Count is how many requests with this method and path prefix came in.
func (p *Proxy) Count(method, pathPrefix string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for k, v := range p.counts {
		if strings.HasPrefix(k, method+" "+pathPrefix) {
			n += v
		}
	}
	return n
}

// Reset forgets the counts.
func (p *Proxy) Reset() {
	p.mu.Lock()
	p.counts = map[string]int{}
	p.mu.Unlock()
}

// SetDrop sets (or with nil clears) when to cut a response mid-body.
func (p *Proxy) SetDrop(f func(r *http.Request) int64) {
	p.mu.Lock()
	p.drop = f
	p.mu.Unlock()
}

// SetDelay sets (or with nil clears) a stall before each answer.
func (p *Proxy) SetDelay(f func(r *http.Request) time.Duration) {
	p.mu.Lock()
	p.delay = f
	p.mu.Unlock()
}

// cuttingWriter passes left bytes of the body, then closes the connection
// under the client's feet, as a dropped network does.
type cuttingWriter struct {
	http.ResponseWriter
	left int64
}

func (c *cuttingWriter) Write(b []byte) (int, error) {
	if int64(len(b)) <= c.left {
		c.left -= int64(len(b))
		return c.ResponseWriter.Write(b)
	}
	n, _ := c.ResponseWriter.Write(b[:c.left])
	c.left = 0
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
	if hj, ok := c.ResponseWriter.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
		}
	}
	return n, io.ErrClosedPipe
}

func (c *cuttingWriter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// SetChallenge sets the WWW-Authenticate header of a faulted 401 (a fault
// function returns -401 for it).
func (p *Proxy) SetChallenge(c string) {
	p.mu.Lock()
	p.challenge = c
	p.mu.Unlock()
}
