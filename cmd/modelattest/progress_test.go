package main

import (
	"testing"
	"time"

	"github.com/vbauerster/mpb/v8/decor"
)

// TestRateMeter: the total line's rate follows the last ten seconds (a
// link that slows down shows the new rate and a longer ETA), and the final
// frame shows the whole transfer's average.
func TestRateMeter(t *testing.T) {
	const mib = 1 << 20
	type frame struct {
		at        time.Duration // since the start
		current   int64
		completed bool
		want      string
	}
	cases := []struct {
		name   string
		total  int64
		frames []frame
	}{
		{
			name:  "steady",
			total: 100 * mib,
			frames: []frame{
				{at: 0, current: 0, want: "--/s"},
				{at: 500 * time.Millisecond, current: 5 * mib, want: "10.0 MiB/s ETA 10s"},
				{at: 2 * time.Second, current: 20 * mib, want: "10.0 MiB/s ETA 8s"},
			},
		},
		{
			name:  "the link slows down",
			total: 200 * mib,
			frames: []frame{
				{at: 0, current: 0},
				{at: 10 * time.Second, current: 100 * mib, want: "10.0 MiB/s ETA 10s"},
				{at: 15 * time.Second, current: 105 * mib},
				{at: 20 * time.Second, current: 110 * mib, want: "1.0 MiB/s ETA 1m30s"}, // the last 10 s only
			},
		},
		{
			name:  "done shows the average",
			total: 40 * mib,
			frames: []frame{
				{at: 0, current: 0},
				{at: 2 * time.Second, current: 30 * mib},
				{at: 4 * time.Second, current: 40 * mib, completed: true, want: "10.0 MiB/s done"},
				{at: 9 * time.Second, current: 40 * mib, completed: true, want: "10.0 MiB/s done"},
			},
		},
		{
			name:  "nothing moved (all mounted)",
			total: 0,
			frames: []frame{
				{at: time.Second, current: 0, completed: true, want: "done"},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t0 := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
			now := t0
			m := newRateMeter(func() time.Time { return now })
			for _, f := range tc.frames {
				now = t0.Add(f.at)
				got := m.show(decor.Statistics{Total: tc.total, Current: f.current, Completed: f.completed})
				if f.want != "" && got != f.want {
					t.Errorf("at %s: %q, want %q", f.at, got, f.want)
				}
			}
		})
	}
}
