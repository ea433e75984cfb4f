package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/modelattest/modelattest/oras"
)

// newBars returns progress bars on w when w is a terminal, nothing in pipes
// (no escape codes in a log or a CI job). The returned function ends the
// display once the transfer is over; err says whether it failed.
func newBars(w io.Writer) (oras.Progress, func(err error)) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, func(error) {}
	}
	p := mpb.New(mpb.WithOutput(w), mpb.WithWidth(40))
	b := &bars{p: p}
	return b, func(err error) {
		b.finish(err)
		p.Wait()
	}
}

// bars shows one bar per file and, below them, a total: bytes moved of
// bytes to move, the recent throughput of the whole transfer and the ETA
// at that rate (rateMeter). Files that move nothing (skipped, mounted,
// present, resumed) leave the total, so throughput and ETA count only
// bytes on the wire.
type bars struct {
	p *mpb.Progress

	mu      sync.Mutex
	total   *mpb.Bar // created on Plan or on the first Track
	size    int64    // what the total bar expects
	planned bool
	failed  bool
}

// movedNothing are the statuses of a file whose bytes did not cross the
// network in this transfer.
var movedNothing = map[string]bool{
	string(oras.BlobSkipped): true, string(oras.BlobMounted): true, "exists": true,
	string(oras.FilePresent): true, string(oras.FileResumed): true,
}

// Plan sets the total before the first file starts.
func (b *bars) Plan(total int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.planned = true
	b.size = total
	b.ensureTotal()
	b.total.SetTotal(total, false)
}

func (b *bars) ensureTotal() {
	if b.total != nil {
		return
	}
	b.total = b.p.AddBar(0,
		mpb.BarPriority(math.MaxInt), // always the last line
		mpb.PrependDecorators(decor.Name("total", decor.WCSyncSpaceR)),
		mpb.AppendDecorators(
			decor.CountersKibiByte("% .1f / % .1f", decor.WCSyncSpace),
			decor.Any(newRateMeter(time.Now).show, decor.WCSyncSpace),
		),
	)
}

// rateWindow is how far back the shown throughput looks: long enough to
// smooth over one slow request, short enough that the ETA follows a link
// whose speed changes during a long transfer.
const rateWindow = 10 * time.Second

// rateMeter shows the throughput of the last rateWindow and the time left
// at that rate; once complete, the average of the whole transfer and
// "done". (mpb's average decorators stop updating at completion, so a
// transfer finished between two frames would show 0 B/s.)
type rateMeter struct {
	start   time.Time
	now     func() time.Time
	end     time.Time
	samples []rateSample // oldest first, the first one rateWindow old at most
}

type rateSample struct {
	at time.Time
	n  int64
}

func newRateMeter(now func() time.Time) *rateMeter { return &rateMeter{start: now(), now: now} }

// show is called by mpb for each frame of the total bar, from one
// goroutine.
func (m *rateMeter) show(s decor.Statistics) string {
	now := m.now()
	if s.Completed {
		if m.end.IsZero() {
			m.end = now
		}
		if secs := m.end.Sub(m.start).Seconds(); secs > 0 && s.Current > 0 {
			return fmt.Sprintf("% .1f/s done", decor.SizeB1024(int64(float64(s.Current)/secs)))
		}
		return "done"
	}
	m.samples = append(m.samples, rateSample{at: now, n: s.Current})
	for len(m.samples) > 1 && !m.samples[1].at.After(now.Add(-rateWindow)) {
		m.samples = m.samples[1:]
	}
	var rate float64
	if old := m.samples[0]; now.Sub(old.at) >= time.Second && s.Current >= old.n {
		rate = float64(s.Current-old.n) / now.Sub(old.at).Seconds()
	} else if secs := now.Sub(m.start).Seconds(); secs > 0 {
		rate = float64(s.Current) / secs // the first second: since the start
	}
	if rate <= 0 {
		return "--/s"
	}
	left := time.Duration(float64(max(s.Total-s.Current, 0)) / rate * float64(time.Second))
	return fmt.Sprintf("% .1f/s ETA %s", decor.SizeB1024(int64(rate)), left.Round(time.Second))
}

// finish completes the total bar, or drops it after a failure or Ctrl-C so
// that the terminal shows the error, not a bar stopped mid-way.
func (b *bars) finish(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.total == nil {
		return
	}
	if err != nil || b.failed {
		b.total.Abort(true)
		return
	}
	b.total.SetTotal(-1, true)
}

func (b *bars) Track(name string, size int64) oras.Tracker {
	b.mu.Lock()
	b.ensureTotal()
	if !b.planned {
		b.size += size
		b.total.SetTotal(b.size, false)
	}
	b.mu.Unlock()
	if len(name) > 32 {
		name = "…" + name[len(name)-31:]
	}
	var status atomic.Pointer[string]
	empty := ""
	status.Store(&empty)
	bar := b.p.AddBar(size,
		mpb.PrependDecorators(decor.Name(name, decor.WCSyncSpaceR)),
		mpb.AppendDecorators(
			decor.Any(func(decor.Statistics) string { return *status.Load() }),
			decor.OnComplete(decor.CountersKibiByte("% .1f / % .1f", decor.WCSyncSpace), ""),
			decor.OnComplete(decor.AverageSpeed(decor.SizeB1024(0), " % .1f", decor.WCSyncSpace), ""),
		),
		mpb.BarRemoveOnComplete(),
	)
	return &barTracker{all: b, bar: bar, status: &status, size: size}
}

type barTracker struct {
	all    *bars
	bar    *mpb.Bar
	status *atomic.Pointer[string]
	size   int64
	added  atomic.Int64
}

func (t *barTracker) Add(n int64) {
	t.added.Add(n)
	t.bar.IncrInt64(n)
	t.all.total.IncrInt64(n)
}

func (t *barTracker) Done(status string, err error) {
	if err != nil {
		t.all.mu.Lock()
		t.all.failed = true
		t.all.mu.Unlock()
		// Dropped, not left half-drawn: after Ctrl-C or a failure the
		// terminal shows the error, not a bar stopped mid-way.
		t.bar.Abort(true)
		return
	}
	if movedNothing[status] {
		// Take the file out of the total: its bytes did not move now.
		added := t.added.Load()
		t.all.mu.Lock()
		t.all.size -= t.size
		t.all.total.SetTotal(t.all.size, false)
		t.all.mu.Unlock()
		t.all.total.IncrInt64(-added)
	}
	t.status.Store(&status)
	t.bar.SetTotal(t.size, true)
}
