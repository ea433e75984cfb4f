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
// bytes to move, the average throughput of the whole transfer and the ETA
// at that rate. Files that move nothing (skipped, mounted, present, resumed)
// leave the total, so throughput and ETA count only bytes on the wire.
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
			decor.Any(rateAndETA(time.Now()), decor.WCSyncSpace),
		),
	)
}

// rateAndETA shows the average throughput since start and the time left
// at that rate; once complete, the final rate and "done". mpb's own
// average decorators stop updating at completion, so a transfer finished
// between two frames would show 0 B/s.
func rateAndETA(start time.Time) func(decor.Statistics) string {
	var end time.Time
	return func(s decor.Statistics) string {
		if end.IsZero() && s.Completed {
			end = time.Now()
		}
		now := end
		if now.IsZero() {
			now = time.Now()
		}
		secs := now.Sub(start).Seconds()
		if secs <= 0 || s.Current <= 0 {
			if s.Completed {
				return "done"
			}
			return "--/s"
		}
		rate := float64(s.Current) / secs
		msg := fmt.Sprintf("% .1f/s", decor.SizeB1024(int64(rate)))
		if s.Completed {
			return msg + " done"
		}
		left := time.Duration(float64(s.Total-s.Current) / rate * float64(time.Second))
		return msg + " ETA " + left.Round(time.Second).String()
	}
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
