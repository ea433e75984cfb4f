package regtest

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// WANOptions shape an emulated wide-area link. Zero values mean no delay
// and no limit.
type WANOptions struct {
	// Delay is the one-way delay of each direction (the round trip is
	// twice it). A new connection also waits one round trip before its
	// first byte, as a TCP handshake does.
	Delay time.Duration
	// ConnRate caps each connection, in bytes per second per direction.
	ConnRate float64
	// InFlight bounds the bytes one connection has sent in one direction
	// and not yet had acknowledged (a TCP window): a byte counts from when
	// it is read until its acknowledgement would be back, one round trip
	// later. A connection then moves at most InFlight bytes per round trip.
	InFlight int
	// LinkRate caps all connections together, in bytes per second per
	// direction, so that opening more connections stops paying.
	LinkRate float64
}

// WANLink is an emulated wide-area link: WAN proxies opened on it share
// its total rate cap and its byte counters.
type WANLink struct {
	opts       WANOptions
	down, up   *rate.Limiter // server→client, client→server
	served     atomic.Int64  // bytes delivered to clients
	sent       atomic.Int64  // bytes delivered to servers
	conns      atomic.Int64
	cutAt      atomic.Int64 // served bytes at which every connection is cut (0: never)
	down0      atomic.Bool  // set once cut: new connections are refused
	mu         sync.Mutex
	open       map[net.Conn]*net.Listener
	bufferPool sync.Pool
}

// wanChunk is the most one read moves through the emulator at a time.
const wanChunk = 64 << 10

// NewWANLink makes a link with these options.
func NewWANLink(o WANOptions) *WANLink {
	l := &WANLink{opts: o, open: map[net.Conn]*net.Listener{}}
	l.bufferPool.New = func() any { b := make([]byte, wanChunk); return &b }
	if o.LinkRate > 0 {
		l.down = rate.NewLimiter(rate.Limit(o.LinkRate), wanChunk)
		l.up = rate.NewLimiter(rate.Limit(o.LinkRate), wanChunk)
	}
	return l
}

// Served is how many bytes servers sent to clients through the link.
func (l *WANLink) Served() int64 { return l.served.Load() }

// Conns is how many connections the link accepted.
func (l *WANLink) Conns() int64 { return l.conns.Load() }

// ResetCounts zeroes Served and Conns.
func (l *WANLink) ResetCounts() {
	l.served.Store(0)
	l.sent.Store(0)
	l.conns.Store(0)
}

// CutAfter cuts every connection once n more bytes have been served, and
// refuses new ones until Heal: the link goes down mid-transfer.
func (l *WANLink) CutAfter(n int64) { l.cutAt.Store(l.served.Load() + n) }

// Heal brings a cut link back up.
func (l *WANLink) Heal() {
	l.cutAt.Store(0)
	l.down0.Store(false)
}

func (l *WANLink) cut() {
	l.down0.Store(true)
	l.closeConns(nil)
}

// closeConns closes the connections of one proxy (nil: all).
func (l *WANLink) closeConns(of *net.Listener) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c, ln := range l.open {
		if of == nil || ln == of {
			c.Close()
		}
	}
}

func (l *WANLink) track(c net.Conn, of *net.Listener) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if of != nil {
		l.open[c] = of
	} else {
		delete(l.open, c)
	}
}

// Proxy starts a loopback TCP proxy on the link to target (host:port) and
// returns its host:port. It stops when the test ends.
func (l *WANLink) Proxy(t testing.TB, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		l.closeConns(&ln)
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if l.down0.Load() {
				c.Close()
				continue
			}
			l.conns.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				l.serve(c, target, &ln)
			}()
		}
	}()
	return ln.Addr().String()
}

func (l *WANLink) serve(client net.Conn, target string, of *net.Listener) {
	defer client.Close()
	server, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer server.Close()
	l.track(client, of)
	l.track(server, of)
	defer l.track(client, nil)
	defer l.track(server, nil)
	time.Sleep(2 * l.opts.Delay) // the handshake's round trip
	done := make(chan struct{}, 2)
	go func() { l.pump(server, client, l.up, &l.sent, false); done <- struct{}{} }()
	go func() { l.pump(client, server, l.down, &l.served, true); done <- struct{}{} }()
	<-done
	// One direction ended: close both, as a proxy does once either side
	// has closed (HTTP clients and servers do not half-close).
	client.Close()
	server.Close()
	<-done
}

type wanPacket struct {
	buf *[]byte
	n   int
	at  time.Time
}

// pump moves bytes from src to dst: each read waits for the window and the
// rate caps, then is delivered Delay later; its window share comes back
// one more Delay after delivery (the acknowledgement's way back).
func (l *WANLink) pump(dst, src net.Conn, link *rate.Limiter, count *atomic.Int64, down bool) {
	o := l.opts
	var conn *rate.Limiter
	if o.ConnRate > 0 {
		conn = rate.NewLimiter(rate.Limit(o.ConnRate), wanChunk)
	}
	window := newWindow(o.InFlight)
	queue := make(chan wanPacket, 1024)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		defer close(queue)
		for {
			bp := l.bufferPool.Get().(*[]byte)
			n, err := src.Read(*bp)
			if n > 0 {
				if !window.acquire(ctx, n) {
					return
				}
				if conn != nil && conn.WaitN(ctx, n) != nil {
					return
				}
				if link != nil && link.WaitN(ctx, n) != nil {
					return
				}
				select {
				case queue <- wanPacket{buf: bp, n: n, at: time.Now().Add(o.Delay)}:
				case <-ctx.Done():
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	for p := range queue {
		if d := time.Until(p.at); d > 0 {
			time.Sleep(d)
		}
		b := (*p.buf)[:p.n]
		if down {
			if at := l.cutAt.Load(); at > 0 && l.served.Load()+int64(p.n) > at {
				b = b[:max(0, at-l.served.Load())]
				_, _ = dst.Write(b)
				count.Add(int64(len(b)))
				l.cut()
				return
			}
		}
		_, err := dst.Write(b)
		l.bufferPool.Put(p.buf)
		if err != nil {
			return
		}
		count.Add(int64(p.n))
		n := p.n
		if o.Delay > 0 {
			time.AfterFunc(o.Delay, func() { window.release(n) })
		} else {
			window.release(n)
		}
	}
}

// window is a byte semaphore (nil: unbounded).
type window struct {
	mu    sync.Mutex
	cond  *sync.Cond
	left  int
	limit int
}

func newWindow(n int) *window {
	if n <= 0 {
		return nil
	}
	w := &window{left: n, limit: n}
	w.cond = sync.NewCond(&w.mu)
	return w
}

func (w *window) acquire(ctx context.Context, n int) bool {
	if w == nil {
		return true
	}
	stop := context.AfterFunc(ctx, func() { w.mu.Lock(); w.cond.Broadcast(); w.mu.Unlock() })
	defer stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	n = min(n, w.limit)
	for w.left < n {
		if ctx.Err() != nil {
			return false
		}
		w.cond.Wait()
	}
	w.left -= n
	return true
}

func (w *window) release(n int) {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.left = min(w.limit, w.left+n)
	w.mu.Unlock()
	w.cond.Broadcast()
}
