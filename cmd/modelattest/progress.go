package main

import (
	"io"
	"os"
	"sync/atomic"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/modelattest/modelattest/oras"
)

// newBars returns progress bars on w when w is a terminal, nothing in pipes.
func newBars(w io.Writer) (oras.Progress, func()) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, func() {}
	}
	p := mpb.New(mpb.WithOutput(w), mpb.WithWidth(40))
	return &bars{p: p}, p.Wait
}

type bars struct{ p *mpb.Progress }

func (b *bars) Track(name string, size int64) oras.Tracker {
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
	return &barTracker{bar: bar, status: &status, size: size}
}

type barTracker struct {
	bar    *mpb.Bar
	status *atomic.Pointer[string]
	size   int64
}

func (t *barTracker) Add(n int64) { t.bar.IncrInt64(n) }

func (t *barTracker) Done(status string, err error) {
	if err != nil {
		// Dropped, not left half-drawn: after Ctrl-C or a failure the
		// terminal shows the error, not a bar stopped mid-way.
		t.bar.Abort(true)
		return
	}
	t.status.Store(&status)
	t.bar.SetTotal(t.size, true)
}
