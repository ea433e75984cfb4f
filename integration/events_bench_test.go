package integration

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelattest/modelattest/events"
	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// BenchmarkVerifyEventSink: verify's latency with and without an HTTP
// event sink, in-process, on one signed and attested model on the embedded
// registry. Emit only queues, so the two should be within noise. The two
// arms alternate iteration by iteration (one verify without an event, one
// with the event built and emitted to the HTTP sink), so a drift of the
// machine's load falls on both alike; running the arms as two
// sub-benchmarks one after the other measured the drift, not the sink.
// It reports each arm's median and the sink's overhead on the median:
//
//	go test -run '^$' -bench VerifyEventSink -benchtime 600x -count 4 ./integration/
func BenchmarkVerifyEventSink(b *testing.B) {
	ctx := context.Background()
	repo, p := signedRepo(b, regtest.Embedded(b, ""), 1)
	tgt, err := oras.OpenRemote(ctx, repo, oras.RemoteOptions{PlainHTTP: true})
	if err != nil {
		b.Fatal(err)
	}
	desc, err := oras.Resolve(ctx, tgt, "v0000")
	if err != nil {
		b.Fatal(err)
	}
	var received atomic.Int64
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var batch []json.RawMessage
		if json.NewDecoder(r.Body).Decode(&batch) == nil {
			received.Add(int64(len(batch)))
		}
	}))
	b.Cleanup(collector.Close)
	sink, err := events.NewHTTPSink(events.HTTPOptions{URL: collector.URL, Format: events.FormatCloudEventsBatch})
	if err != nil {
		b.Fatal(err)
	}
	var without, with []time.Duration
	i := 0
	for b.Loop() {
		withSink := i%2 == 1
		i++
		start := time.Now()
		rep, err := referrers.VerifyModel(ctx, tgt, tgt.Name, desc, p, referrers.VerifyOptions{})
		if err != nil || !rep.Passed {
			b.Fatal(err)
		}
		if withSink {
			sink.Emit(events.FromReport(rep, events.Options{Face: events.FaceVerify, Duration: time.Since(start)}))
			with = append(with, time.Since(start))
		} else {
			without = append(without, time.Since(start))
		}
	}
	b.StopTimer()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sink.Close(cctx); err != nil {
		b.Fatal(err)
	}
	// The sink must really have delivered, or the "with" arm measured nothing.
	if got, want := received.Load(), int64(len(with)); got != want {
		b.Fatalf("collector received %d events, want %d", got, want)
	}
	if len(with) == 0 {
		return
	}
	median := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)/2]) / float64(time.Millisecond)
	}
	m0, m1 := median(without), median(with)
	b.ReportMetric(m0, "no-sink-p50-ms")
	b.ReportMetric(m1, "http-sink-p50-ms")
	b.ReportMetric(100*(m1-m0)/m0, "overhead-%")
}
