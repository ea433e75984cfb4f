package encryption

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"
)

// zeros is an endless plaintext of n bytes that costs no memory.
type zeros struct{ n int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	k := int(min(int64(len(p)), z.n))
	clear(p[:k])
	z.n -= int64(k)
	return k, nil
}

func (*zeros) Close() error { return nil }

// BenchmarkEncryptDecrypt runs a layer through both push passes (measure,
// then re-encrypt for the upload) and the pull's decryption. B/op grows
// with the layer: ocicrypt's decrypting reader (utils.DelayedReader)
// allocates a fresh buffer on every Read, garbage the collector takes at
// once. What is held does not grow: max-heap-MiB, the largest heap seen
// while it runs (sampled every 5 ms), stays flat across sizes.
func BenchmarkEncryptDecrypt(b *testing.B) {
	k := newKeyPair(b, "p256")
	r := k.recipient(b)
	for _, size := range []int64{1 << 20, 64 << 20, 256 << 20} {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			b.SetBytes(size)
			b.ReportAllocs()
			stop, peak := heapPeak()
			defer stop()
			for b.Loop() {
				open := func() (io.ReadCloser, error) { return &zeros{n: size}, nil }
				l, err := EncryptLayer(context.Background(), plainLayer(nil), open, []Recipient{r})
				if err != nil {
					b.Fatal(err)
				}
				key, _ := l.Key()
				rc, _ := l.Open()
				if _, err := Decrypt(context.Background(), l.Descriptor, key, rc, io.Discard); err != nil {
					b.Fatal(err)
				}
				rc.Close()
			}
			b.ReportMetric(float64(peak())/(1<<20), "max-heap-MiB")
		})
	}
}

// heapPeak samples the heap in use until stop is called; peak reads the
// largest value seen.
func heapPeak() (stop func(), peak func() uint64) {
	var mu sync.Mutex
	var max uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			mu.Lock()
			max = maxOf(max, ms.HeapInuse)
			mu.Unlock()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }, func() uint64 { mu.Lock(); defer mu.Unlock(); return max }
}

func maxOf(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}
