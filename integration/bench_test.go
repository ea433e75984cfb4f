package integration

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/modelattest/modelattest/internal/regtest"
)

// The transfer benchmark pushes and pulls the same files with modelattest
// and with the oras CLI, side by side in one run, each against a fresh
// distribution registry process on loopback, and reports throughput and
// the peak RSS of the client process:
//
//	make bench   # go test -run '^$' -bench Transfer -benchtime 1x ./integration/
//
// MODELATTEST_BENCH_BIG sets the big file's size in bytes (default 2 GiB).
// MODELATTEST_BENCH_DIR puts the files, the registry's storage and the pulled
// output in that folder (default: the test's temp dir); point it at a tmpfs
// such as /dev/shm to measure the clients rather than the disk.
//
// Peak RSS is the client's VmHWM, read from /proc while it runs: the
// rusage of a child started by a Go program reports at least the parent's
// RSS (the child is cloned from it before exec), so it cannot be used.

type benchCase struct {
	name  string
	files map[string]int64 // relative path → size
}

func benchCases() []benchCase {
	big := int64(2 << 30)
	if s := os.Getenv("MODELATTEST_BENCH_BIG"); s != "" {
		big = parseSize(s)
	}
	small := map[string]int64{}
	for i := 0; i < 200; i++ {
		small[fmt.Sprintf("shard-%03d.bin", i)] = 1 << 20
	}
	return []benchCase{
		{name: "big-file", files: map[string]int64{"model.safetensors": big}},
		{name: "200x1MiB", files: small},
	}
}

func writeBenchFiles(b *testing.B, dir string, files map[string]int64) (total int64) {
	b.Helper()
	buf := make([]byte, 4<<20)
	for p, size := range files {
		f, err := os.Create(filepath.Join(dir, p))
		if err != nil {
			b.Fatal(err)
		}
		for n := int64(0); n < size; {
			chunk := min(int64(len(buf)), size-n)
			rand.Read(buf[:chunk])
			if _, err := f.Write(buf[:chunk]); err != nil {
				b.Fatal(err)
			}
			n += chunk
		}
		f.Close()
		total += size
	}
	return total
}

// runMeasured runs a client command and returns its wall time and peak RSS.
func runMeasured(b *testing.B, dir, name string, args ...string) (time.Duration, int64) {
	b.Helper()
	m := runMeasuredMem(b, dir, name, args...)
	return m.took, m.hwm
}

// vmHWM reads a process's peak resident set size in bytes.
func vmHWM(statusFile string) int64 {
	hwm, _ := procMem(statusFile)
	return hwm
}

func benchDir(b *testing.B) string {
	b.Helper()
	base := os.Getenv("MODELATTEST_BENCH_DIR")
	if base == "" {
		return b.TempDir()
	}
	d, err := os.MkdirTemp(base, "bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func BenchmarkTransfer(b *testing.B) {
	oras := regtest.Tool(b, "oras")
	for _, bc := range benchCases() {
		src := benchDir(b)
		total := writeBenchFiles(b, src, bc.files)
		var names []string
		for p := range bc.files {
			names = append(names, p)
		}
		clients := []struct {
			name       string
			push, pull func(ref, out string) []string
			bin        string
		}{
			{
				name: "modelattest", bin: modelattest,
				push: func(ref, _ string) []string { return []string{"push", "--plain-http", "--no-progress", ref, src} },
				pull: func(ref, out string) []string {
					return []string{"pull", "--plain-http", "--no-progress", "--insecure-skip-verify", "-o", out, ref}
				},
			},
			{
				name: "oras", bin: oras,
				push: func(ref, _ string) []string {
					return append([]string{"push", "--plain-http", "--no-tty", "--artifact-type", "application/vnd.cncf.model.manifest.v1+json", ref}, names...)
				},
				pull: func(ref, out string) []string { return []string{"pull", "--plain-http", "--no-tty", "-o", out, ref} },
			},
		}
		for _, c := range clients {
			for _, op := range []string{"push", "pull"} {
				b.Run(bc.name+"/"+op+"/"+c.name, func(b *testing.B) {
					var took time.Duration
					var rss int64
					for i := 0; i < b.N; i++ {
						b.StopTimer()
						host := regtest.DistributionAt(b, benchDir(b), "")
						ref := host + "/bench/model:v1"
						out := filepath.Join(benchDir(b), "out")
						if op == "pull" {
							runMeasured(b, src, c.bin, c.push(ref, out)...)
						}
						b.StartTimer()
						args := c.push(ref, out)
						if op == "pull" {
							args = c.pull(ref, out)
						}
						d, r := runMeasured(b, src, c.bin, args...)
						took += d
						rss = max(rss, r)
						b.StopTimer()
						os.RemoveAll(out)
					}
					b.ReportMetric(float64(total)*float64(b.N)/took.Seconds()/1e6, "MB/s")
					b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MiB")
				})
			}
		}
	}
}

func parseSize(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}
