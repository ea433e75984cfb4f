package oras

import "sync/atomic"

// Progress reports transfers. The CLI shows bars on a terminal; the library
// default (nil) reports nothing.
type Progress interface {
	// Track starts reporting one transfer of size bytes named name.
	Track(name string, size int64) Tracker
}

// Tracker reports the progress of one transfer.
type Tracker interface {
	// Add counts n more bytes done.
	Add(n int64)
	// Done ends the transfer; status says how (a BlobStatus for a push:
	// "uploaded", "mounted", "skipped"; a FileStatus for a pull; "copied"
	// or "exists" for a copy) and err is non-nil when it failed. A blob
	// mounted or skipped ends without any Add.
	Done(status string, err error)
}

// Planner is a Progress that shows totals (an aggregate bar's size and
// ETA). Push and Pull call Plan once, before the first Track, with the
// bytes of all the blobs they will check or move; a blob that is then
// skipped, mounted or already present ends with a status saying so.
type Planner interface {
	Plan(totalBytes int64)
}

func plan(p Progress, total int64) {
	if pl, ok := p.(Planner); ok {
		pl.Plan(total)
	}
}

type noTracker struct{}

func (noTracker) Add(int64)          {}
func (noTracker) Done(string, error) {}

func track(p Progress, name string, size int64) Tracker {
	if p == nil {
		return noTracker{}
	}
	return p.Track(name, size)
}

// countingWriter adds every write to a tracker and counts what it added,
// so a failed attempt can take its bytes back from the progress. It is
// itself a Tracker, to hand to code that reports progress.
type countingWriter struct {
	t Tracker
	n atomic.Int64 // parallel byte ranges add from several goroutines
}

func (w *countingWriter) Write(b []byte) (int, error) {
	w.Add(int64(len(b)))
	return len(b), nil
}

// Add counts n more bytes.
func (w *countingWriter) Add(n int64) {
	w.n.Add(n)
	w.t.Add(n)
}

// Done passes on.
func (w *countingWriter) Done(status string, err error) { w.t.Done(status, err) }
