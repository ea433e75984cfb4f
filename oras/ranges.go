package oras

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/retry"
)

// A blob at least parallelMin bytes big is fetched in byte ranges over
// several connections. Over a wide-area link one TCP connection is bound
// by its round trip and window (and object stores cap each connection), so
// parallel ranges are what fill the link; on loopback they also let the
// kernel's file writes use both cores. parallelMin is a variable only so
// that tests can use small blobs.
var parallelMin int64 = 32 << 20

// DefaultMaxConnections caps the connections per host that byte ranges use
// when PullOptions.MaxConnections is 0.
const DefaultMaxConnections = 16

// startConnections is how many connections per host ranges start with;
// the controller grows from there while throughput grows.
const startConnections = 8

// Range sizes: ranges are handed out in order, each a share of what is
// left (guided scheduling), so the last ones are small and no connection
// is left alone with a big tail.
// Each range costs a round trip before its first byte, so ranges are not
// made smaller than minRange: 8 MiB is 200 ms at 40 MB/s, five 40 ms round
// trips; a connection then spends at least 80 % of its time receiving.
// A range is a share of what is left of its blob divided by the
// connections that blob can expect (the host's limit over the blobs
// fetching from it): one big file spreads over every connection, while 8
// shards on 16 connections take two long ranges each rather than many
// short ones, each short one a round trip more. They are at most maxChunk,
// so that a connection that slows down holds back little.
const (
	maxChunk    = 64 << 20
	rangeBufLen = 256 << 10
)

// minRange is the smallest range handed out: 8 MiB, less only when tests
// lower parallelMin.
func minRange() int64 { return min(8<<20, parallelMin/4) }

// errNoRanges says the registry ignored a Range header: fetch in one stream.
var errNoRanges = errors.New("registry does not serve byte ranges")

var (
	errMismatch = errors.New("digest mismatch")
	errSize     = errors.New("size mismatch")
)

// TransferStats are the figures of one blob's download.
type TransferStats struct {
	// Bytes is what came over the network for this blob in this pull.
	Bytes int64 `json:"bytes"`
	// ResumedBytes were already in the staging folder from an interrupted
	// pull, and were hashed from disk instead of fetched again.
	ResumedBytes int64 `json:"resumedBytes,omitempty"`
	// Seconds is the download's wall time, verification included.
	Seconds float64 `json:"seconds"`
	// Ranges is how many byte-range requests were made (0: one stream).
	Ranges int `json:"ranges"`
	// Connections is the most ranges in flight at once for this blob.
	Connections int `json:"connections"`
	// Steals is how many times a connection left without work took the
	// second half of a range still in flight.
	Steals int `json:"steals,omitempty"`
	// ReadBack is the bytes hashed by reading the staging file back:
	// ranges that arrived ahead of the hashed point, and resumed bytes.
	// The rest was hashed as it arrived.
	ReadBack int64 `json:"readBack,omitempty"`
	// Redirected says the ranges came from the registry's storage redirect
	// (pre-signed URLs), and Resolves how many times such a URL was asked
	// of the registry (an expired one is asked for again).
	Redirected bool `json:"redirected,omitempty"`
	Resolves   int  `json:"resolves,omitempty"`
}

// rangeSession is what the blobs of one pull share for their byte ranges:
// per-host connection gates with their throughput controllers, and the
// HTTP/1.1 clients (one connection per range in flight).
type rangeSession struct {
	max     int
	mu      sync.Mutex
	gates   map[string]*hostGate
	clients map[*remote.Repository]*rangeClients
	done    chan struct{}
	closed  sync.Once
}

func newRangeSession(maxConns int) *rangeSession {
	if maxConns <= 0 {
		maxConns = DefaultMaxConnections
	}
	return &rangeSession{max: maxConns, gates: map[string]*hostGate{}, clients: map[*remote.Repository]*rangeClients{}, done: make(chan struct{})}
}

// close stops the controllers and drops idle connections.
func (s *rangeSession) close() {
	s.closed.Do(func() {
		close(s.done)
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, c := range s.clients {
			if c.h1 != nil {
				c.h1.CloseIdleConnections()
			}
		}
	})
}

// gate returns the connection gate of host, starting its controller.
func (s *rangeSession) gate(host string) *hostGate {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g, ok := s.gates[host]; ok {
		return g
	}
	g := newHostGate(s.max)
	s.gates[host] = g
	go g.control(s.done)
	return g
}

// hostGate bounds the ranges in flight to one host and moves that bound
// with the throughput: it grows while more connections bring more bytes,
// goes back when they did not, and halves on 429/503 or when throughput
// collapses.
type hostGate struct {
	mu      sync.Mutex
	cond    *sync.Cond
	limit   int
	max     int
	active  int
	waiting int
	blobs   int // blobs fetching ranges through this gate
	bytes   atomic.Int64

	throttled bool
	// controller state, touched only by control
	lastBytes int64
	prevRate  float64
	prevLimit int
	grew      int // epochs since the last increase (0: none pending)
	hold      int // epochs without growth
}

func newHostGate(maxConns int) *hostGate {
	g := &hostGate{limit: min(startConnections, maxConns), max: maxConns}
	g.cond = sync.NewCond(&g.mu)
	return g
}

// acquire waits for a free connection slot.
func (g *hostGate) acquire(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		g.mu.Lock()
		g.cond.Broadcast()
		g.mu.Unlock()
	})
	defer stop()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.waiting++
	defer func() { g.waiting-- }()
	for g.active >= g.limit {
		if err := ctx.Err(); err != nil {
			return err
		}
		g.cond.Wait()
	}
	g.active++
	return nil
}

func (g *hostGate) release() {
	g.mu.Lock()
	g.active--
	g.mu.Unlock()
	g.cond.Signal()
}

// join and leave count the blobs that share the gate's connections.
func (g *hostGate) join() {
	g.mu.Lock()
	g.blobs++
	g.mu.Unlock()
}

func (g *hostGate) leave() {
	g.mu.Lock()
	g.blobs--
	g.mu.Unlock()
}

// share is how many connections one blob can expect: the limit over the
// blobs fetching, at least one.
func (g *hostGate) share() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return max(1, g.limit/max(1, g.blobs))
}

// throttle records a 429 or 503: the next decision halves the limit.
func (g *hostGate) throttle() {
	g.mu.Lock()
	g.throttled = true
	g.mu.Unlock()
}

const (
	controlTick  = 200 * time.Millisecond
	controlEpoch = 2 // ticks per decision
)

// control decides the limit every epoch from the bytes received in it.
// After an increase it waits one epoch for the new connections to open
// (a round trip or two, and TLS) before judging whether they paid.
func (g *hostGate) control(done <-chan struct{}) {
	tk := time.NewTicker(controlTick)
	defer tk.Stop()
	ticks := 0
	last := time.Now()
	for {
		select {
		case <-done:
			return
		case now := <-tk.C:
			ticks++
			if ticks < controlEpoch {
				continue
			}
			ticks = 0
			b := g.bytes.Load()
			rate := float64(b-g.lastBytes) / now.Sub(last).Seconds()
			g.lastBytes, last = b, now
			g.decide(rate)
		}
	}
}

func (g *hostGate) decide(rate float64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	defer g.cond.Broadcast()
	busy := g.active > 0 || g.waiting > 0
	switch {
	case !busy:
		g.prevRate, g.grew = 0, 0
		return
	case g.throttled:
		g.throttled = false
		g.limit = max(1, g.limit/2)
		g.hold, g.grew = 5, 0
	case g.grew == 1: // the new connections are still opening
		g.grew = 2
		return // keep prevRate: the rate before the increase
	case g.grew == 2:
		g.grew = 0
		if rate < g.prevRate*1.1 { // the increase bought under 10 %
			g.limit = g.prevLimit
			g.hold = 8
		} else {
			g.grow() // it paid: try more at once
		}
	case g.hold > 0:
		g.hold--
	case g.prevRate > 0 && rate < g.prevRate/2 && g.limit > startConnections:
		g.limit = max(startConnections, g.limit*3/4)
		g.hold = 3
	default:
		g.grow()
	}
	g.prevRate = rate
}

// grow doubles the limit when every slot is taken and more are wanted.
// Called with g.mu held.
func (g *hostGate) grow() {
	if g.waiting > 0 && g.active >= g.limit && g.limit < g.max {
		g.prevLimit = g.limit
		g.limit = min(g.max, g.limit*2)
		g.grew = 1
	}
}

// rangeClients are the HTTP clients of one repository's ranges. Both use
// HTTP/1.1 only: over TLS Go would negotiate HTTP/2, which multiplexes
// every range onto one TCP connection and so onto one window.
type rangeClients struct {
	// registry carries the registry's credentials and follows no
	// redirect: a redirect's target is fetched with direct.
	registry remote.Client
	// direct has no credentials: it fetches pre-signed storage URLs.
	direct *http.Client
	h1     *http.Transport
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// clientsFor builds the range clients of repo from its own client: the same
// credentials, token cache and TLS settings, on an HTTP/1.1 transport.
func (s *rangeSession) clientsFor(repo *remote.Repository) *rangeClients {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.clients[repo]; ok {
		return c
	}
	var ac *auth.Client
	switch c := repo.Client.(type) {
	case *explainingClient:
		ac, _ = c.inner.(*auth.Client)
	case *auth.Client:
		ac = c
	case nil:
		ac = auth.DefaultClient
	}
	c := &rangeClients{}
	var base http.RoundTripper
	if ac != nil && ac.Client != nil {
		base = ac.Client.Transport
	}
	rt := h1Transport(base, s.max)
	if t, ok := rt.(*http.Transport); ok {
		c.h1 = t
	}
	c.direct = &http.Client{Transport: rt}
	if ac != nil {
		clone := *ac
		clone.Client = &http.Client{Transport: rt, CheckRedirect: noRedirect}
		c.registry = &clone
	} else {
		c.registry = repo.Client // a caller's own client: used as it is
	}
	s.clients[repo] = c
	return c
}

// h1Transport unwraps the registry client's transport down to the
// *http.Transport and clones it with HTTP/2 off. Retries are left out:
// the range loop retries itself and tells the controller about 429/503.
func h1Transport(rt http.RoundTripper, maxConns int) http.RoundTripper {
	for {
		switch t := rt.(type) {
		case *retry.Transport:
			rt = t.Base
			continue
		case lengthBlind:
			rt = t.next
			continue
		case nil:
			rt = http.DefaultTransport
			continue
		case *http.Transport:
			h1 := t.Clone()
			h1.ForceAttemptHTTP2 = false
			h1.Protocols = new(http.Protocols)
			h1.Protocols.SetHTTP1(true)
			if h1.TLSClientConfig != nil {
				h1.TLSClientConfig.NextProtos = []string{"http/1.1"}
			}
			h1.MaxIdleConnsPerHost = max(maxConns, h1.MaxIdleConnsPerHost)
			h1.MaxConnsPerHost = 0
			return h1
		}
		return rt // a caller's own transport: used as it is
	}
}

// rangeSource serves byte ranges of one blob.
type rangeSource interface {
	// get returns the body of bytes [from, to], errNoRanges when the
	// server does not serve ranges, or a *throttleError for 429/503.
	get(ctx context.Context, from, to int64) (io.ReadCloser, error)
	// host names where the ranges go, for the connection gate.
	host() string
	stats(s *TransferStats)
}

// throttleError is a 429 or 503 answer to a range.
type throttleError struct {
	status int
	after  time.Duration
}

func (e *throttleError) Error() string {
	return fmt.Sprintf("range request throttled: %d %s", e.status, http.StatusText(e.status))
}

// fetcherSource adapts any RangeFetcher (no redirect handling of its own).
type fetcherSource struct {
	rf   RangeFetcher
	desc ocispec.Descriptor
}

func (s fetcherSource) get(ctx context.Context, from, to int64) (io.ReadCloser, error) {
	return s.rf.FetchRange(ctx, s.desc, from, to)
}
func (fetcherSource) host() string           { return "" }
func (fetcherSource) stats(s *TransferStats) {}

// repoSource serves ranges of a blob of a registry repository. The first
// range asks the registry, with its credentials and without following a
// redirect: a 206 means the registry serves ranges itself; a redirect
// names a storage URL, which every later range uses directly, without the
// registry's credentials. When storage refuses that URL (a pre-signed URL
// expires: 403), the registry is asked again for a fresh one.
type repoSource struct {
	repo *remote.Repository
	desc ocispec.Descriptor
	cl   *rangeClients

	mu         sync.Mutex
	loc        *url.URL // nil until resolved
	redirected bool
	gen        int
	resolves   int
}

// maxResolves bounds how often one blob's storage URL is asked for.
const maxResolves = 16

func (s *repoSource) host() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loc != nil {
		return s.loc.Host
	}
	return s.repo.Reference.Host()
}

func (s *repoSource) stats(st *TransferStats) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st.Redirected, st.Resolves = s.redirected, s.resolves
}

func (s *repoSource) blobURL() *url.URL {
	scheme := "https"
	if s.repo.PlainHTTP {
		scheme = "http"
	}
	ref := s.repo.Reference
	return &url.URL{Scheme: scheme, Host: ref.Host(), Path: "/v2/" + ref.Repository + "/blobs/" + s.desc.Digest.String()}
}

func (s *repoSource) get(ctx context.Context, from, to int64) (io.ReadCloser, error) {
	s.mu.Lock()
	if s.loc == nil {
		// Resolve while holding the lock: the other ranges wait for the
		// answer rather than all asking the registry at once.
		defer s.mu.Unlock()
		return s.resolve(ctx, from, to)
	}
	loc, redirected, gen := s.loc, s.redirected, s.gen
	s.mu.Unlock()
	if !redirected {
		return s.do(ctx, s.cl.registry, loc, from, to, true)
	}
	body, err := s.do(ctx, s.cl.direct, loc, from, to, false)
	var se *storageRefusal
	if !errors.As(err, &se) {
		return body, err
	}
	s.mu.Lock()
	if s.gen != gen { // another range already asked for a fresh URL
		loc, redirected := s.loc, s.redirected
		s.mu.Unlock()
		if !redirected {
			return s.do(ctx, s.cl.registry, loc, from, to, true)
		}
		return s.do(ctx, s.cl.direct, loc, from, to, false)
	}
	defer s.mu.Unlock()
	return s.resolve(ctx, from, to)
}

// resolve asks the registry for bytes [from, to] and follows a redirect
// by hand. Called with s.mu held.
func (s *repoSource) resolve(ctx context.Context, from, to int64) (io.ReadCloser, error) {
	if s.resolves >= maxResolves {
		return nil, fmt.Errorf("blob %s: storage refused %d fresh URLs from the registry", s.desc.Digest, s.resolves)
	}
	s.resolves++
	req, resp, err := s.askRegistry(ctx, from, to)
	if err != nil {
		return nil, err
	}
	u := s.blobURL()
	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		resp.Body.Close()
		loc, err := u.Parse(resp.Header.Get("Location"))
		if err != nil || (loc.Scheme != "http" && loc.Scheme != "https") || loc.Host == "" {
			return nil, fmt.Errorf("blob %s: registry redirected to %q: not an http(s) URL", s.desc.Digest, resp.Header.Get("Location"))
		}
		s.loc, s.redirected = loc, true
		s.gen++
		body, err := s.do(ctx, s.cl.direct, loc, from, to, false)
		var se *storageRefusal
		if errors.As(err, &se) && sameOrigin(loc, u) {
			// A URL the registry has just handed out, refused at once: not
			// an expired signature but a location that wants the
			// registry's credentials. It is the registry's own origin
			// (scheme, host and port), where they may go; later ranges
			// use it with them, as one stream would.
			s.redirected = false
			return s.do(ctx, s.cl.registry, loc, from, to, true)
		}
		return body, err
	}
	body, err := checkRange(resp, req, from, to, true)
	if err == nil {
		s.loc, s.redirected = u, false
		s.gen++
	}
	return body, err
}

// sameOrigin says a and b have one scheme, host and port: credentials
// for one may go to the other.
func sameOrigin(a, b *url.URL) bool {
	port := func(u *url.URL) string {
		if p := u.Port(); p != "" {
			return p
		}
		if u.Scheme == "https" {
			return "443"
		}
		return "80"
	}
	return a.Scheme == b.Scheme && strings.EqualFold(a.Hostname(), b.Hostname()) && port(a) == port(b)
}

// storageRefusal is a 401/403 from a storage URL: expired or revoked.
type storageRefusal struct{ status int }

func (e *storageRefusal) Error() string {
	return fmt.Sprintf("storage refused the pre-signed URL: %d %s", e.status, http.StatusText(e.status))
}

func rangeRequest(ctx context.Context, u *url.URL, from, to int64) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", from, to))
	return req, nil
}

func (s *repoSource) do(ctx context.Context, c remote.Client, u *url.URL, from, to int64, registry bool) (io.ReadCloser, error) {
	req, err := rangeRequest(ctx, u, from, to)
	if err != nil {
		return nil, err
	}
	if registry {
		req = req.WithContext(auth.AppendRepositoryScope(ctx, s.repo.Reference, auth.ActionPull))
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	return checkRange(resp, req, from, to, registry)
}

// checkRange returns the body of a 206 that carries exactly bytes
// [from, to], and turns other answers into errors.
func checkRange(resp *http.Response, req *http.Request, from, to int64, registry bool) (io.ReadCloser, error) {
	switch resp.StatusCode {
	case http.StatusPartialContent:
		want := fmt.Sprintf("bytes %d-%d/", from, to)
		if cr := resp.Header.Get("Content-Range"); !strings.HasPrefix(cr, want) {
			resp.Body.Close()
			return nil, fmt.Errorf("%s answered range %d-%d with Content-Range %q", req.URL.Host, from, to, cr)
		}
		return resp.Body, nil
	case http.StatusOK:
		resp.Body.Close()
		return nil, errNoRanges
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		resp.Body.Close()
		after := time.Second
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
			after = min(time.Duration(s)*time.Second, 30*time.Second)
		}
		return nil, &throttleError{status: resp.StatusCode, after: after}
	case http.StatusUnauthorized, http.StatusForbidden:
		if !registry {
			resp.Body.Close()
			return nil, &storageRefusal{status: resp.StatusCode}
		}
	}
	defer resp.Body.Close()
	_, err := doExpectResp(resp, req)
	return nil, err
}

// getRange GETs bytes [from, to] of the blob and checks the registry
// answered with exactly that range (Target.FetchRange).
func getRange(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor, from, to int64) (io.ReadCloser, error) {
	s := &repoSource{repo: repo, desc: desc, cl: &rangeClients{registry: registryClient(repo), direct: http.DefaultClient}}
	req, resp, err := s.askRegistry(ctx, from, to)
	if err != nil {
		return nil, err
	}
	return checkRange(resp, req, from, to, true)
}

// askRegistry sends the registry, with its credentials, a GET of bytes
// [from, to] of the blob, and returns the request and the answer as they
// are (a redirect is not followed).
func (s *repoSource) askRegistry(ctx context.Context, from, to int64) (*http.Request, *http.Response, error) {
	ctx = auth.AppendRepositoryScope(ctx, s.repo.Reference, auth.ActionPull)
	req, err := rangeRequest(ctx, s.blobURL(), from, to)
	if err != nil {
		return nil, nil, err
	}
	resp, err := s.cl.registry.Do(req)
	if err != nil {
		return nil, nil, err
	}
	return req, resp, nil
}

func registryClient(repo *remote.Repository) remote.Client {
	if repo.Client == nil {
		return auth.DefaultClient
	}
	return repo.Client
}

// sourceOf finds how to fetch ranges of desc from src.
func (s *rangeSession) sourceOf(src any, desc ocispec.Descriptor) (rangeSource, bool) {
	switch r := src.(type) {
	case *Target:
		if repo, ok := r.GraphTarget.(*remote.Repository); ok {
			return &repoSource{repo: repo, desc: desc, cl: s.clientsFor(repo)}, true
		}
	case *remote.Repository:
		return &repoSource{repo: r, desc: desc, cl: s.clientsFor(r)}, true
	}
	if rf, ok := src.(RangeFetcher); ok {
		return fetcherSource{rf: rf, desc: desc}, true
	}
	return nil, false
}

// span is a byte interval [off, end).
type span struct{ off, end int64 }

// addSpan merges [off, end) into a sorted list of disjoint spans.
func addSpan(have []span, off, end int64) []span {
	if off >= end {
		return have
	}
	i, _ := slices.BinarySearchFunc(have, off, func(s span, o int64) int {
		switch {
		case s.end < o:
			return -1
		case s.off > o:
			return 1
		}
		return 0
	})
	j := i
	for j < len(have) && have[j].off <= end {
		off, end = min(off, have[j].off), max(end, have[j].end)
		j++
	}
	return slices.Replace(have, i, j, span{off, end})
}

// missing lists the gaps of have within [0, size).
func missing(have []span, size int64) []span {
	var gaps []span
	at := int64(0)
	for _, h := range have {
		if h.off > at {
			gaps = append(gaps, span{at, min(h.off, size)})
		}
		at = max(at, h.end)
	}
	if at < size {
		gaps = append(gaps, span{at, size})
	}
	return gaps
}

// rangeState is the record of which bytes of a staged partial blob are
// written: one "OFF END" line per piece, appended as pieces complete. It
// only saves a re-run from fetching them again: the whole blob is still
// hashed from disk before it is accepted.
type rangeState struct {
	mu sync.Mutex
	f  *os.File
	n  int // pieces recorded by this pull
}

func (r *rangeState) record(off, end int64) error {
	if r == nil || r.f == nil || off >= end {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	_, err := fmt.Fprintf(r.f, "%d %d\n", off, end)
	return err
}

// readRangeState parses a state file; lines that do not parse or fall
// outside the blob are ignored (a torn last line after a crash).
func readRangeState(rd io.Reader, size int64) []span {
	var have []span
	sc := bufio.NewScanner(rd)
	for sc.Scan() {
		a, b, ok := strings.Cut(sc.Text(), " ")
		off, err1 := strconv.ParseInt(a, 10, 64)
		end, err2 := strconv.ParseInt(b, 10, 64)
		if !ok || err1 != nil || err2 != nil || off < 0 || end > size || off >= end {
			continue
		}
		have = addSpan(have, off, end)
	}
	return have
}

// blobRanges is one blob's download in ranges.
type blobRanges struct {
	src   rangeSource
	gate  *hostGate
	f     *os.File
	size  int64
	t     Tracker
	state *rangeState

	mu       sync.Mutex
	cond     *sync.Cond
	have     []span // bytes written
	todo     []span // bytes not yet handed out
	failed   error
	finished bool // every range worker is gone
	// hmu guards h and hashed: the bytes before hashed went into h, in
	// order. The range writing at hashed hashes its bytes as it writes
	// them (inline); the hasher goroutine reads back from the file only
	// what was written ahead of that point. hashed is atomic so that the
	// hasher can read it under mu.
	// wmu serialises writes to f. The kernel does anyway (ext4 holds the
	// inode lock for each buffered write), but a writer waiting there
	// spins while the other copies its 256 KiB; here it sleeps, and the
	// CPU goes to the sockets and the hash.
	wmu      sync.Mutex
	hmu      sync.Mutex
	h        hash.Hash
	hashed   atomic.Int64
	readBack int64            // touched only by the hasher
	flights  map[*flight]bool // ranges being fetched
	peak     int
	ranges   int
	steals   int
	fetched  atomic.Int64
}

// flight is a range being fetched, from off to end. A connection left
// without work takes the second half of the longest flight (steals it):
// end moves back, never below reserved, the end of the buffer the fetch
// is reading now, so no byte is ever written by two ranges. Both are
// guarded by blobRanges.mu.
type flight struct {
	off, end, reserved int64
}

// fetchRanges downloads desc from src into f in byte ranges written at
// their offsets, while one goroutine hashes the file in order from disk,
// right behind the written prefix: memory does not grow with the number
// of ranges or how far apart they finish. have lists bytes an interrupted
// pull already wrote into f; only the rest is fetched, and every byte is
// hashed. It returns errNoRanges when the server ignores ranges, and
// ErrIntegrity-wrapped errors for bytes that do not match desc.
func (s *rangeSession) fetchRanges(ctx context.Context, src rangeSource, desc ocispec.Descriptor, f *os.File, have []span, state *rangeState, t Tracker, stats *TransferStats) error {
	if desc.Digest.Algorithm() != digest.SHA256 {
		return errNoRanges
	}
	if err := f.Truncate(desc.Size); err != nil {
		return err
	}
	b := &blobRanges{src: src, f: f, size: desc.Size, t: t, state: state, have: have, todo: missing(have, desc.Size), h: sha256.New(), flights: map[*flight]bool{}}
	b.cond = sync.NewCond(&b.mu)
	for _, h := range have {
		stats.ResumedBytes += h.end - h.off
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { b.fail(ctx.Err()) })
	defer stop()

	var wg sync.WaitGroup
	hashErr := make(chan error, 1)
	go func() { hashErr <- b.hash(desc.Digest) }()
	if len(b.todo) > 0 {
		// The first range goes alone and small: it finds out whether the
		// server serves ranges and where (a redirect) before the others
		// start, so that a registry ignoring Range is asked once.
		first := b.takeN(minRange() / 4)
		b.gate = s.gate(src.host())
		if err := b.gate.acquire(ctx); err != nil {
			b.fail(err)
		} else {
			err := b.fetch(ctx, first)
			b.gate.release()
			if err != nil {
				b.fail(err)
			}
		}
		b.mu.Lock()
		ok := b.failed == nil
		b.mu.Unlock()
		if ok {
			b.gate = s.gate(src.host()) // the redirect's host, once known
			b.gate.join()
			defer b.gate.leave()
			for i := 0; i < s.max; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					b.work(ctx)
				}()
			}
		}
	}
	wg.Wait()
	b.mu.Lock()
	b.finished = true
	failed := b.failed
	b.mu.Unlock()
	b.cond.Broadcast()
	err := <-hashErr
	stats.Bytes += b.fetched.Load()
	stats.Ranges += b.ranges
	stats.Steals += b.steals
	stats.Connections = max(stats.Connections, b.peak)
	stats.ReadBack += b.readBack
	src.stats(stats)
	if failed != nil && (err == nil || errors.Is(err, errWorkersFailed)) {
		return failed
	}
	return err
}

var errWorkersFailed = errors.New("range workers failed")

func (b *blobRanges) fail(err error) {
	b.mu.Lock()
	if b.failed == nil {
		b.failed = err
	}
	b.mu.Unlock()
	b.cond.Broadcast()
}

// take hands out the next range: a share of what is left, so that ranges
// shrink toward the end of the blob. With nothing left to hand out it
// steals the second half of the flight with the most bytes still to come,
// if that is at least minRange: at the end of a pull, connections whose
// blobs are done help the ranges still running instead of idling.
func (b *blobRanges) take() (*flight, bool) {
	share := b.gate.share()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failed != nil {
		return nil, false
	}
	if len(b.todo) == 0 {
		return b.steal()
	}
	left := int64(0)
	for _, g := range b.todo {
		left += g.end - g.off
	}
	n := left / int64(2*share)
	return b.fly(b.cut(min(max(n, minRange()), maxChunk))), true
}

// steal cuts the longest flight in two and returns its second half.
// Called with b.mu held.
func (b *blobRanges) steal() (*flight, bool) {
	var victim *flight
	for fl := range b.flights {
		if victim == nil || fl.end-fl.reserved > victim.end-victim.reserved {
			victim = fl
		}
	}
	if victim == nil || victim.end-victim.reserved < minRange() {
		return nil, false
	}
	// Halves on buffer boundaries keep writes whole pages.
	mid := victim.reserved + (victim.end-victim.reserved)/2&^(rangeBufLen-1)
	if mid <= victim.reserved {
		return nil, false
	}
	nf := b.fly(span{mid, victim.end})
	victim.end = mid
	b.steals++
	return nf, true
}

// fly registers c as a flight. Called with b.mu held.
func (b *blobRanges) fly(c span) *flight {
	fl := &flight{off: c.off, end: c.end, reserved: c.off}
	b.flights[fl] = true
	return fl
}

// takeN hands out the next range of at most n bytes.
func (b *blobRanges) takeN(n int64) *flight {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.fly(b.cut(n))
}

// cut takes up to n bytes off the first gap. Called with b.mu held and
// b.todo not empty.
func (b *blobRanges) cut(n int64) span {
	g := &b.todo[0]
	c := span{g.off, min(g.end, g.off+n)}
	if g.end-c.end < minRange()/4 { // no crumbs left behind
		c.end = g.end
	}
	g.off = c.end
	if g.off == g.end {
		b.todo = b.todo[1:]
	}
	return c
}

func (b *blobRanges) work(ctx context.Context) {
	for {
		if err := b.gate.acquire(ctx); err != nil {
			b.fail(err)
			return
		}
		c, ok := b.take()
		if !ok {
			b.gate.release()
			return
		}
		err := b.fetch(ctx, c)
		b.gate.release()
		if err != nil {
			b.fail(err)
			return
		}
	}
}

var rangeBufs = sync.Pool{New: func() any { b := make([]byte, rangeBufLen); return &b }}

// maxRangeTries bounds the tries of one range after network errors and
// 5xx; throttling (429/503) is waited out up to maxThrottles times.
const (
	maxRangeTries = 4
	maxThrottles  = 8
)

// fetch writes flight c into the file, retrying from where it stopped,
// and stopping where a steal moved its end.
func (b *blobRanges) fetch(ctx context.Context, c *flight) error {
	b.mu.Lock()
	b.peak = max(b.peak, len(b.flights))
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.flights, c)
		b.mu.Unlock()
	}()
	bp := rangeBufs.Get().(*[]byte)
	defer rangeBufs.Put(bp)
	buf := *bp
	pos := c.off
	// next reserves the next buffer's worth of c, at most to its end as
	// it stands now; 0 when c is done.
	next := func() int64 {
		b.mu.Lock()
		defer b.mu.Unlock()
		n := min(int64(len(buf)), c.end-pos)
		c.reserved = pos + max(n, 0)
		return n
	}
	tries, throttles := 0, 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		b.mu.Lock()
		to := c.end
		if pos < to {
			b.ranges++
		}
		b.mu.Unlock()
		if pos >= to {
			return nil
		}
		body, err := b.src.get(ctx, pos, to-1)
		var te *throttleError
		switch {
		case errors.As(err, &te):
			b.gate.throttle()
			if throttles++; throttles > maxThrottles {
				return err
			}
			if err := sleepCtx(ctx, te.after); err != nil {
				return err
			}
			continue
		case errors.Is(err, errNoRanges):
			return err
		case err != nil:
			if tries++; tries >= maxRangeTries || !retryableFetch(err) {
				return err
			}
			if err := sleepCtx(ctx, time.Duration(tries)*200*time.Millisecond); err != nil {
				return err
			}
			continue
		}
		start := pos
		var rerr error
		for {
			want := next()
			if want <= 0 {
				break
			}
			// Whole buffers: fewer writes, wake-ups of the hasher and locks.
			n, err := io.ReadFull(body, buf[:want])
			if err == io.ErrUnexpectedEOF {
				err = io.EOF
			}
			if n > 0 {
				b.wmu.Lock()
				_, werr := b.f.WriteAt(buf[:n], pos)
				b.wmu.Unlock()
				if werr != nil {
					body.Close()
					return werr
				}
				b.hashInline(buf[:n], pos)
				b.mu.Lock()
				b.have = addSpan(b.have, pos, pos+int64(n))
				b.mu.Unlock()
				b.cond.Broadcast()
				pos += int64(n)
				b.fetched.Add(int64(n))
				b.gate.bytes.Add(int64(n))
				b.t.Add(int64(n))
			}
			if err != nil {
				rerr = err
				break
			}
		}
		b.mu.Lock()
		end := c.end
		b.mu.Unlock()
		if pos == to && rerr == nil {
			// Read the body's end, so that its connection goes back to
			// the pool rather than being closed. A range cut short by a
			// steal has more to come: closing drops its connection.
			_, _ = body.Read(buf[:1])
		}
		body.Close()
		// What was written is recorded even when the range broke off, so
		// a re-run fetches only the rest.
		if err := b.state.record(start, pos); err != nil {
			return err
		}
		if pos == end {
			return nil
		}
		if rerr == io.EOF || rerr == nil {
			rerr = fmt.Errorf("%w: range %d-%d ended at %d", io.ErrUnexpectedEOF, c.off, end-1, pos)
		}
		if tries++; tries >= maxRangeTries || ctx.Err() != nil {
			return rerr
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// hashInline hashes p, just written at off, when it is the next byte the
// hash needs. It never waits: while the hasher is reading back, the bytes
// are left to it.
func (b *blobRanges) hashInline(p []byte, off int64) {
	if !b.hmu.TryLock() {
		return
	}
	if b.hashed.Load() == off {
		b.h.Write(p)
		b.hashed.Store(off + int64(len(p)))
	}
	b.hmu.Unlock()
}

// hash waits for the blob to be hashed in order: inline by the range at
// the hashed point, or here, read back from the file, for bytes written
// ahead of it. Memory does not grow with how far ahead ranges finish.
func (b *blobRanges) hash(want digest.Digest) error {
	var buf []byte
	defer func() {
		if buf != nil {
			rangeBufs.Put(&buf)
		}
	}()
	for {
		b.mu.Lock()
		for b.hashed.Load() < b.size && b.prefix() <= b.hashed.Load() && b.failed == nil && !b.finished {
			b.cond.Wait()
		}
		// Once finished, no range writes or hashes inline any more: avail
		// is final, and hashed can only be behind it or stuck short.
		avail, failed, finished := b.prefix(), b.failed, b.finished
		b.mu.Unlock()
		if failed != nil {
			return errWorkersFailed
		}
		b.hmu.Lock()
		hashed := b.hashed.Load()
		if hashed >= b.size {
			b.hmu.Unlock()
			break
		}
		if avail <= hashed {
			b.hmu.Unlock()
			if finished {
				return fmt.Errorf("%w: ranges ended with bytes missing at %d", io.ErrUnexpectedEOF, hashed)
			}
			continue
		}
		if buf == nil {
			buf = *rangeBufs.Get().(*[]byte)
		}
		for hashed < avail {
			n, err := b.f.ReadAt(buf[:min(int64(len(buf)), avail-hashed)], hashed)
			b.h.Write(buf[:n])
			hashed += int64(n)
			b.readBack += int64(n)
			b.hashed.Store(hashed)
			if err != nil && err != io.EOF {
				b.hmu.Unlock()
				return err
			}
			if n == 0 {
				b.hmu.Unlock()
				return io.ErrUnexpectedEOF
			}
		}
		b.hmu.Unlock()
	}
	if got := digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(b.h.Sum(nil))); got != want {
		return fmt.Errorf("%w: got %s", errMismatch, got)
	}
	return nil
}

// prefix is the end of the written bytes that start at 0. Called with
// b.mu held.
func (b *blobRanges) prefix() int64 {
	if len(b.have) == 0 || b.have[0].off != 0 {
		return 0
	}
	return b.have[0].end
}

// recorded is how many pieces this pull recorded.
func (r *rangeState) recorded() int {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}
