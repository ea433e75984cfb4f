package integration

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/modelattest/modelattest/events"
	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// BenchmarkVerifyEventSink: verify's latency with and without an HTTP
// event sink, in-process, on one signed and attested model on the embedded
// registry. Emit only queues, so the two should be within noise. Besides
// the mean (ns/op) it reports the median of the iterations (p50-ms), which
// a loaded machine's stalls move less. -count repeats each sub-benchmark
// in turn (all no-sink runs, then all http-sink runs), not interleaved:
//
//	go test -run '^$' -bench VerifyEventSink -benchtime 200x -count 6 ./integration/
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
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
	b.Cleanup(collector.Close)
	for _, withSink := range []bool{false, true} {
		name := "no-sink"
		if withSink {
			name = "http-sink"
		}
		b.Run(name, func(b *testing.B) {
			var sink events.Sink = events.Discard{}
			if withSink {
				s, err := events.NewHTTPSink(events.HTTPOptions{URL: collector.URL, Format: events.FormatCloudEventsBatch})
				if err != nil {
					b.Fatal(err)
				}
				sink = s
			}
			var took []time.Duration
			for b.Loop() {
				start := time.Now()
				rep, err := referrers.VerifyModel(ctx, tgt, tgt.Name, desc, p, referrers.VerifyOptions{})
				if err != nil || !rep.Passed {
					b.Fatal(err)
				}
				if withSink {
					sink.Emit(events.FromReport(rep, events.Options{Face: events.FaceVerify, Duration: time.Since(start)}))
				}
				took = append(took, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2])/float64(time.Millisecond), "p50-ms")
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := sink.Close(cctx); err != nil {
				b.Fatal(err)
			}
		})
	}
}
