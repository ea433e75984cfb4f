package oras

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

// The range record and the span arithmetic decide which bytes a resumed
// pull fetches again; a wrong merge would skip bytes (caught later by the
// digest, at the cost of a whole re-fetch) or fetch them twice.
func TestSpans(t *testing.T) {
	tests := []struct {
		name    string
		record  string
		size    int64
		have    []span
		missing []span
	}{
		{name: "empty", size: 10, missing: []span{{0, 10}}},
		{name: "out of order, merged", record: "4 6\n0 2\n2 4\n", size: 10, have: []span{{0, 6}}, missing: []span{{6, 10}}},
		{name: "overlaps", record: "0 5\n3 8\n", size: 10, have: []span{{0, 8}}, missing: []span{{8, 10}}},
		{name: "holes", record: "2 3\n5 7\n", size: 10, have: []span{{2, 3}, {5, 7}}, missing: []span{{0, 2}, {3, 5}, {7, 10}}},
		{name: "bridged", record: "0 2\n5 7\n2 5\n", size: 7, have: []span{{0, 7}}},
		{name: "torn, outside or inverted lines ignored", record: "0 2\n9 12\n4 3\n-1 2\nx y\n5", size: 10, have: []span{{0, 2}}, missing: []span{{2, 10}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			have := readRangeState(strings.NewReader(tt.record), tt.size)
			if !slices.Equal(have, tt.have) {
				t.Errorf("have = %v, want %v", have, tt.have)
			}
			if got := missing(have, tt.size); !slices.Equal(got, tt.missing) {
				t.Errorf("missing = %v, want %v", got, tt.missing)
			}
		})
	}
}

// Ranges shrink toward the end of a blob, and no crumb is left behind.
func TestTakeShrinks(t *testing.T) {
	g := newHostGate(8)
	g.join()
	b := &blobRanges{size: 256 << 20, todo: []span{{0, 256 << 20}}, gate: g, flights: map[*flight]bool{}}
	var sizes []int64
	end := int64(0)
	for {
		c, ok := b.take()
		if !ok {
			break
		}
		delete(b.flights, c) // done: nothing left to steal
		if c.off != end {
			t.Fatalf("range %v after %d: not contiguous", c, end)
		}
		end = c.end
		sizes = append(sizes, c.end-c.off)
	}
	if end != 256<<20 {
		t.Fatalf("ranges ended at %d", end)
	}
	for i := 1; i < len(sizes); i++ {
		if sizes[i] > sizes[i-1] {
			t.Fatalf("sizes %v: range %d grows", sizes, i)
		}
	}
	if sizes[0] > maxChunk || sizes[0] < 2*minRange() || sizes[len(sizes)-1] > minRange()+minRange()/4 {
		t.Errorf("sizes %v: want big ranges first (at most %d), about %d last", sizes, maxChunk, minRange())
	}
}

// A range's size follows the connections its blob can expect: the host's
// limit shared by the blobs fetching through it. Many blobs take few long
// ranges (fewer round trips); one blob spreads over every connection.
func TestTakeFollowsShare(t *testing.T) {
	tests := []struct {
		name         string
		limit, blobs int
		want         int64
	}{
		{name: "one blob, 8 connections", limit: 8, blobs: 1, want: 16 << 20},
		{name: "one blob, 16 connections", limit: 16, blobs: 1, want: minRange()},
		{name: "8 blobs, 16 connections", limit: 16, blobs: 8, want: 64 << 20},
		{name: "16 blobs, 8 connections", limit: 8, blobs: 16, want: maxChunk},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newHostGate(tt.limit)
			g.limit = tt.limit // as if grown
			for range tt.blobs {
				g.join()
			}
			b := &blobRanges{size: 256 << 20, todo: []span{{0, 256 << 20}}, gate: g, flights: map[*flight]bool{}}
			if c, _ := b.take(); c.end-c.off != tt.want {
				t.Errorf("first range %d MiB, want %d MiB", (c.end-c.off)>>20, tt.want>>20)
			}
		})
	}
}

// With nothing left to hand out, a free connection takes the second half
// of the flight with the most bytes to come, never the buffer its fetch is
// reading now, and leaves flights under minRange alone.
func TestSteal(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name    string
		flights []flight // off, end, reserved
		want    span     // zero: no steal
		victim  int      // index of the flight cut short
	}{
		{name: "longest is halved", flights: []flight{{0, 64 * mib, 10 * mib}, {64 * mib, 128 * mib, 70 * mib}},
			want: span{99 * mib, 128 * mib}, victim: 1},
		{name: "counted from the reserved buffer, not from off", flights: []flight{{0, 40 * mib, 36 * mib}, {40 * mib, 60 * mib, 41 * mib}},
			want: span{50*mib + 512<<10, 60 * mib}, victim: 1},
		{name: "too short to pay a round trip", flights: []flight{{0, 8 * mib, 1 * mib}}},
		{name: "nothing in flight"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &blobRanges{size: 128 * mib, gate: newHostGate(8), flights: map[*flight]bool{}}
			fls := make([]*flight, len(tt.flights))
			for i := range tt.flights {
				fls[i] = &tt.flights[i]
				b.flights[fls[i]] = true
			}
			got, ok := b.take()
			if tt.want == (span{}) {
				if ok {
					t.Fatalf("stole %d-%d, want no steal", got.off, got.end)
				}
				return
			}
			if !ok || got.off != tt.want.off || got.end != tt.want.end {
				t.Fatalf("stole %+v (%v), want %v", got, ok, tt.want)
			}
			if v := fls[tt.victim]; v.end != got.off || v.end < v.reserved || got.off%rangeBufLen != 0 {
				t.Errorf("victim now ends at %d (reserved %d), want %d on a buffer boundary", v.end, v.reserved, got.off)
			}
			if !b.flights[got] || b.steals != 1 {
				t.Errorf("the stolen half is not in flight (steals %d)", b.steals)
			}
		})
	}
}

// The controller grows the connection limit while throughput grows, undoes
// an increase that bought under 10 %, and halves on 429/503.
func TestGateDecides(t *testing.T) {
	type step struct {
		rate      float64
		throttled bool
		want      int
	}
	tests := []struct {
		name  string
		max   int
		steps []step
	}{
		{name: "grows while it pays, to the cap", max: 32, steps: []step{
			{rate: 100, want: 16}, {rate: 150, want: 16}, {rate: 200, want: 32}, {rate: 250, want: 32}, {rate: 390, want: 32}}},
		{name: "an increase that does not pay is undone", max: 32, steps: []step{
			{rate: 100, want: 16}, {rate: 105, want: 16}, {rate: 105, want: 8}, {rate: 105, want: 8}}},
		{name: "throttled halves and holds", max: 16, steps: []step{
			{rate: 100, throttled: true, want: 4}, {rate: 100, want: 4}, {rate: 100, want: 4}}},
		{name: "collapse brings it down", max: 32, steps: []step{
			{rate: 100, want: 16}, {rate: 100, want: 16}, {rate: 300, want: 32}, {rate: 300, want: 32}, {rate: 400, want: 32},
			{rate: 400, want: 32}, {rate: 150, want: 24}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newHostGate(tt.max)
			for i, s := range tt.steps {
				g.active, g.waiting = g.limit, 1 // every slot busy, more wanted
				g.throttled = s.throttled
				g.decide(s.rate)
				if g.limit != s.want {
					t.Fatalf("step %d (rate %.0f): limit %d, want %d", i, s.rate, g.limit, s.want)
				}
			}
		})
	}
}

// Credentials follow a redirect only to the registry's own origin: one
// scheme, host and port (an explicit default port is the same port).
func TestSameOrigin(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"http://reg:5000/v2/x", "http://reg:5000/v2/x?sig=1", true},
		{"https://Reg.example/v2/x", "https://reg.example:443/blob", true},
		{"http://reg/v2/x", "http://reg:80/v2/x", true},
		{"http://reg:5000/v2/x", "http://reg:5001/v2/x", false},
		{"http://reg/v2/x", "https://reg/v2/x", false},
		{"https://reg.example/v2/x", "https://s3.reg.example/v2/x", false},
		{"https://reg.example/v2/x", "https://reg.example.evil/v2/x", false},
	}
	for _, tt := range tests {
		a, _ := url.Parse(tt.a)
		b, _ := url.Parse(tt.b)
		if got := sameOrigin(a, b); got != tt.want {
			t.Errorf("sameOrigin(%s, %s) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
