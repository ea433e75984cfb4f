package referrers_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// BenchmarkSign signs a pushed model of 1 MiB and of 2 GiB on the embedded
// registry (through a counting proxy): signing covers the manifest digest,
// so the time must not grow with the model, and no blob may be fetched.
//
//	go test -run '^$' -bench Sign -benchtime 20x ./referrers/
func BenchmarkSign(b *testing.B) {
	ctx := context.Background()
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, _ := referrers.NewSigner(priv)
	for _, size := range []int64{1 << 20, 2 << 30} {
		b.Run(fmt.Sprintf("model=%dMiB", size>>20), func(b *testing.B) {
			proxy := regtest.NewProxy(b, regtest.Embedded(b, ""))
			tgt, _ := oras.OpenRemote(ctx, proxy.Host+"/models/bench", oras.RemoteOptions{PlainHTTP: true})
			dir := b.TempDir()
			f, _ := os.Create(filepath.Join(dir, "model.safetensors"))
			if err := f.Truncate(size); err != nil { // sparse: the content does not matter here
				b.Fatal(err)
			}
			f.Close()
			desc, err := oras.Push(ctx, tgt, "v1", dir, oras.PushOptions{})
			if err != nil {
				b.Fatal(err)
			}
			proxy.Reset()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := referrers.Sign(ctx, tgt, desc, s, referrers.AttachOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(proxy.Count("GET", "/v2/models/bench/blobs/")), "blob-GETs")
		})
	}
}
