package oras_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
)

// BenchmarkPushWAN pushes one big file through the WAN emulator (40 ms
// round trip, 40 MB/s and 4 MiB in flight per connection, 400 MB/s for the
// link) to distribution: uploaded to a new repository, mounted from the
// repository it was uploaded to, and skipped on a re-push. It reports the
// file's bytes over the wall time and the bytes that went out in request
// bodies (counted behind the link). One blob's upload is one session on
// one connection, so "upload" is bound by a connection's rate, not the
// link's.
//
//	go test -run '^$' -bench PushWAN -benchtime 1x ./oras/
func BenchmarkPushWAN(b *testing.B) {
	const size = 128 << 20
	ctx := context.Background()
	counter := newBodyCounter(b, regtest.Distribution(b, ""), false)
	link := regtest.NewWANLink(regtest.WANOptions{Delay: 20 * time.Millisecond, ConnRate: 40e6, InFlight: 4 << 20, LinkRate: 400e6})
	host := link.Proxy(b, counter.host)
	model, cache := regtest.ModelDir(b, size), b.TempDir()
	open := func(repo string) *oras.Target {
		tgt, err := oras.OpenRemote(ctx, host+"/"+repo, oras.RemoteOptions{PlainHTTP: true})
		if err != nil {
			b.Fatal(err)
		}
		return tgt
	}
	uploaded := 0
	for _, mode := range []string{"upload", "mount", "skip"} {
		b.Run(mode, func(b *testing.B) {
			var sent int64
			var took time.Duration
			for i := 0; i < b.N; i++ {
				repo := ""
				switch mode {
				case "upload":
					uploaded++
					repo = fmt.Sprintf("up/m%d", uploaded)
				case "mount":
					repo = fmt.Sprintf("mounted/m%d", i) // mounted from an up/ repository
				case "skip":
					repo = fmt.Sprintf("up/m%d", uploaded)
				}
				counter.sent.Store(0)
				start := time.Now()
				res, err := oras.PushModel(ctx, open(repo), "v1", model, oras.PushOptions{DigestCacheDir: cache})
				took += time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				want := map[string]oras.BlobStatus{"upload": oras.BlobUploaded, "mount": oras.BlobMounted, "skip": oras.BlobSkipped}[mode]
				for _, bl := range res.Blobs {
					if bl.Status != want {
						b.Fatalf("%s: %s, want %s", bl.Path, bl.Status, want)
					}
				}
				sent += counter.sent.Load()
			}
			b.ReportMetric(float64(size)*float64(b.N)/took.Seconds()/1e6, "MB/s")
			b.ReportMetric(float64(sent)/float64(b.N), "sent-bytes/op")
		})
	}
}
