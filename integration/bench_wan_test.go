package integration

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelattest/modelattest/internal/regtest"
)

// BenchmarkWAN pulls the same models with modelattest and with the oras CLI,
// side by side in one run, from a distribution registry process through
// the WAN emulator of internal/regtest:
//
//	make bench-wan   # MODELATTEST_BENCH_WAN=1 go test -run '^$' -bench WAN -benchtime 1x ./integration/
//
// The link: a 40 ms round trip, 40 MB/s and 4 MiB in flight per
// connection, 400 MB/s for the whole link. The networks: the registry
// straight through the link ("wan"), through a storage-redirect front
// whose object store is also behind the link ("redirect"), through an
// HTTPS front offering HTTP/2 ("tls"), and the same proxy with no delay
// and no caps ("local"), so that the proxy's own CPU cost is in both.
// The models: one 2 GiB file and 8 × 256 MiB shards
// (MODELATTEST_BENCH_WAN_MIB sets the total in MiB, for trying it small).
// Both clients run as processes; peak RSS is each one's VmHWM.
//
// Last, throughput against concurrency on the sharded model: modelattest
// with --max-connections N, oras with --concurrency N. The results
// (results.json, results.md) and the chart (chart.svg) go to
// MODELATTEST_BENCH_OUT (default $TMPDIR/modelattest-bench-wan).
func BenchmarkWAN(b *testing.B) {
	if os.Getenv("MODELATTEST_BENCH_WAN") == "" {
		b.Skip("set MODELATTEST_BENCH_WAN=1 (make bench-wan): it takes minutes and gigabytes")
	}
	if from := os.Getenv("MODELATTEST_BENCH_WAN_RENDER"); from != "" {
		// Only draw the chart again from an earlier run's results.json.
		var run struct {
			TotalBytes int64 `json:"totalBytes"`
			Results    []struct {
				Network, Client string
				Setting         int
				MBps            float64 `json:"MBps"`
			} `json:"results"`
		}
		data, err := os.ReadFile(filepath.Join(from, "results.json"))
		if err == nil {
			err = json.Unmarshal(data, &run)
		}
		if err != nil {
			b.Fatal(err)
		}
		var series [2][]point
		for i, client := range []string{"modelattest", "oras"} {
			for _, r := range run.Results {
				if r.Network == "wan sweep" && r.Client == client {
					series[i] = append(series[i], point{float64(r.Setting), r.MBps})
				}
			}
		}
		if err := os.WriteFile(filepath.Join(from, "chart.svg"), []byte(sweepChart(run.TotalBytes, series[:])), 0o644); err != nil {
			b.Fatal(err)
		}
		return
	}
	orasBin := regtest.Tool(b, "oras")
	total := int64(2048) << 20
	if s := os.Getenv("MODELATTEST_BENCH_WAN_MIB"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 8 {
			b.Fatalf("MODELATTEST_BENCH_WAN_MIB=%q: want a number of MiB, 8 or more", s)
		}
		total = n << 20
	}
	runs := 1
	if s := os.Getenv("MODELATTEST_BENCH_WAN_RUNS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("MODELATTEST_BENCH_WAN_RUNS=%q: want a number of runs, 1 or more", s)
		}
		runs = n
	}
	outDir := os.Getenv("MODELATTEST_BENCH_OUT")
	if outDir == "" {
		outDir = filepath.Join(os.TempDir(), "modelattest-bench-wan")
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		b.Fatal(err)
	}

	wan := regtest.WANOptions{Delay: 20 * time.Millisecond, ConnRate: 40e6, InFlight: 4 << 20, LinkRate: 400e6}
	registry := regtest.DistributionAt(b, benchDir(b), "")
	models := []struct {
		name  string
		files map[string]int64
	}{
		{name: "one file", files: map[string]int64{"model.safetensors": total}},
		{name: "8 shards", files: map[string]int64{}},
	}
	for i := 0; i < 8; i++ {
		models[1].files[fmt.Sprintf("model-%05d-of-00008.safetensors", i+1)] = total / 8
	}
	repos := map[string]string{}
	for i, m := range models {
		src := benchDir(b)
		writeBenchFiles(b, src, m.files)
		repo := fmt.Sprintf("bench/model%d", i)
		runMeasured(b, src, modelattest, "push", "--plain-http", "--no-progress", registry+"/"+repo+":v1", src)
		os.RemoveAll(src)
		repos[m.name] = repo
	}

	type network struct {
		name   string
		host   string
		link   *regtest.WANLink
		caFile string
	}
	nets := []*network{}
	newNet := func(name string, o regtest.WANOptions, front *regtest.StorageFrontOptions) *network {
		n := &network{name: name, link: regtest.NewWANLink(o)}
		if front == nil {
			n.host = n.link.Proxy(b, registry)
		} else {
			f := regtest.NewStorageFront(b, registry, *front)
			n.host = n.link.Proxy(b, f.Host)
			_, port, _ := net.SplitHostPort(n.link.Proxy(b, f.StoreAddr))
			f.SetStorePublic("localhost:" + port)
			n.caFile = f.CAFile
		}
		nets = append(nets, n)
		return n
	}
	newNet("local", regtest.WANOptions{}, nil)
	newNet("wan", wan, nil)
	newNet("redirect", wan, &regtest.StorageFrontOptions{Redirect: true})
	newNet("tls", wan, &regtest.StorageFrontOptions{TLS: true})

	type result struct {
		Model, Network, Client string
		Setting                int     `json:",omitempty"`
		MBps                   float64 `json:"MBps"`
		Seconds                float64
		PeakRSSMiB             float64
		// PeakAnonMiB is the most anonymous memory (heap, stacks) seen:
		// VmHWM also counts the binary's own pages, file-backed.
		PeakAnonMiB float64
		// ClientCPUSeconds is the client's CPU time (user and system),
		// ProxyCPUSeconds the emulator's (this process) meanwhile: with
		// the registry they share the machine's cores.
		ClientCPUSeconds, ProxyCPUSeconds float64
		// RunsMBps are every run's throughput when the case ran more than
		// once; the other fields are the median run's.
		RunsMBps []float64 `json:",omitempty"`
	}
	var results []result
	pull := func(b *testing.B, client string, n *network, model string, extra ...string) result {
		ref := n.host + "/" + repos[model] + ":v1"
		out := filepath.Join(benchDir(b), "out")
		var args []string
		bin := modelattest
		if client == "oras" {
			bin = orasBin
			args = []string{"pull", "--no-tty", "-o", out}
		} else {
			args = []string{"pull", "--no-progress", "--insecure-skip-verify", "-o", out}
		}
		if n.caFile != "" {
			args = append(args, "--ca-file", n.caFile)
		} else {
			args = append(args, "--plain-http")
		}
		args = append(append(args, extra...), ref)
		// This VM's speed moves between runs (docs/PERFORMANCE.md): each
		// case runs `runs` times and the median run counts.
		var all []measured
		for range runs {
			all = append(all, runMeasuredMem(b, b.TempDir(), bin, args...))
			os.RemoveAll(out)
		}
		var each []float64 // in the order they ran
		if runs > 1 {
			for _, r := range all {
				each = append(each, float64(total)/r.took.Seconds()/1e6)
			}
		}
		slices.SortFunc(all, func(x, y measured) int { return cmp.Compare(x.took, y.took) })
		m := all[len(all)/2]
		mbps := float64(total) / m.took.Seconds() / 1e6
		b.ReportMetric(mbps, "MB/s")
		b.ReportMetric(float64(m.hwm)/(1<<20), "peak-RSS-MiB")
		b.ReportMetric(float64(m.anon)/(1<<20), "peak-anon-MiB")
		b.ReportMetric(m.cpu.Seconds(), "client-CPU-s")
		b.ReportMetric(m.self.Seconds(), "proxy-CPU-s")
		return result{Model: model, Network: n.name, Client: client, MBps: mbps, Seconds: m.took.Seconds(),
			PeakRSSMiB: float64(m.hwm) / (1 << 20), PeakAnonMiB: float64(m.anon) / (1 << 20),
			ClientCPUSeconds: m.cpu.Seconds(), ProxyCPUSeconds: m.self.Seconds(), RunsMBps: each}
	}
	for _, m := range models {
		for _, n := range nets {
			for _, client := range []string{"modelattest", "oras"} {
				b.Run(strings.ReplaceAll(m.name, " ", "-")+"/"+n.name+"/"+client, func(b *testing.B) {
					r := pull(b, client, n, m.name)
					results = append(results, r)
				})
			}
		}
	}
	// Throughput against concurrency, on the sharded model over the WAN.
	for _, c := range []int{1, 2, 4, 8, 16} {
		for _, client := range []string{"modelattest", "oras"} {
			b.Run(fmt.Sprintf("sweep/%s/%d", client, c), func(b *testing.B) {
				flag := "--max-connections"
				if client == "oras" {
					flag = "--concurrency"
				}
				r := pull(b, client, nets[1], "8 shards", flag, strconv.Itoa(c))
				r.Setting, r.Network = c, "wan sweep"
				results = append(results, r)
			})
		}
	}

	load, _ := os.ReadFile("/proc/loadavg")
	js, _ := json.MarshalIndent(map[string]any{"date": time.Now().UTC().Format(time.RFC3339), "loadavg": strings.TrimSpace(string(load)),
		"totalBytes": total, "link": wan, "results": results}, "", "  ")
	writeOut := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(outDir, name), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	writeOut("results.json", js)

	var md strings.Builder
	fmt.Fprintf(&md, "%s, load average %s, %d MiB per model, median of %d run(s) per case\n\n", time.Now().UTC().Format("2006-01-02 15:04"), strings.TrimSpace(string(load)), total>>20, runs)
	md.WriteString("| model | network | modelattest | oras | ratio | modelattest peak RSS (anon) | oras peak RSS (anon) | CPU s, modelattest / its proxy | CPU s, oras / its proxy |\n|---|---|---|---|---|---|---|---|---|\n")
	find := func(model, network, client string) result {
		for _, r := range results {
			if r.Model == model && r.Network == network && r.Client == client {
				return r
			}
		}
		return result{}
	}
	for _, m := range models {
		for _, n := range nets {
			a, o := find(m.name, n.name, "modelattest"), find(m.name, n.name, "oras")
			fmt.Fprintf(&md, "| %s | %s | %.0f MB/s (%.1f s) | %.0f MB/s (%.1f s) | %.2f× | %.1f MiB (%.1f) | %.1f MiB (%.1f) | %.1f / %.1f | %.1f / %.1f |\n",
				m.name, n.name, a.MBps, a.Seconds, o.MBps, o.Seconds, a.MBps/o.MBps, a.PeakRSSMiB, a.PeakAnonMiB, o.PeakRSSMiB, o.PeakAnonMiB,
				a.ClientCPUSeconds, a.ProxyCPUSeconds, o.ClientCPUSeconds, o.ProxyCPUSeconds)
		}
	}
	if runs > 1 {
		md.WriteString("\n| model | network | client | every run |\n|---|---|---|---|\n")
		for _, r := range results {
			if r.Network == "wan sweep" {
				continue
			}
			each := make([]string, len(r.RunsMBps))
			for i, v := range r.RunsMBps {
				each[i] = fmt.Sprintf("%.0f", v)
			}
			fmt.Fprintf(&md, "| %s | %s | %s | %s MB/s |\n", r.Model, r.Network, r.Client, strings.Join(each, ", "))
		}
	}
	md.WriteString("\n| concurrency | modelattest (--max-connections) | oras (--concurrency) |\n|---|---|---|\n")
	var series [2][]point
	for _, c := range []int{1, 2, 4, 8, 16} {
		var row [2]float64
		for i, client := range []string{"modelattest", "oras"} {
			for _, r := range results {
				if r.Network == "wan sweep" && r.Client == client && r.Setting == c {
					row[i] = r.MBps
					series[i] = append(series[i], point{float64(c), r.MBps})
				}
			}
		}
		fmt.Fprintf(&md, "| %d | %.0f MB/s | %.0f MB/s |\n", c, row[0], row[1])
	}
	writeOut("results.md", []byte(md.String()))
	writeOut("chart.svg", []byte(sweepChart(total, series[:])))
	b.Logf("results in %s:\n%s", outDir, md.String())
}

// measured is what runMeasuredMem saw of one client run.
type measured struct {
	took      time.Duration
	hwm, anon int64 // peak VmHWM; the most RssAnon seen, polled every 5 ms
	// cpu is the client's CPU time (user and system); self is this
	// process's over the same time: the WAN emulator's proxies.
	cpu, self time.Duration
}

// runMeasuredMem runs a client command and returns its wall time, its
// peak RSS (VmHWM), the most anonymous memory (RssAnon) seen while
// polling /proc every 5 ms, and the CPU time it and this process used.
func runMeasuredMem(b *testing.B, dir, name string, args ...string) measured {
	b.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+b.TempDir(), "DOCKER_CONFIG="+b.TempDir())
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	start, self := time.Now(), selfCPU()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	var hwm, anon atomic.Int64
	done := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
		for {
			h, a := procMem(status)
			hwm.Store(max(hwm.Load(), h))
			anon.Store(max(anon.Load(), a))
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	err := cmd.Wait()
	took, self := time.Since(start), selfCPU()-self
	close(done)
	<-polled
	if err != nil {
		b.Fatalf("%s %v: %v\n%s", filepath.Base(name), args, err, stderr.String())
	}
	return measured{took: took, hwm: hwm.Load(), anon: anon.Load(), cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), self: self}
}

// procMem reads VmHWM and RssAnon, in bytes, from a /proc status file.
func procMem(statusFile string) (hwm, anon int64) {
	data, err := os.ReadFile(statusFile)
	if err != nil {
		return 0, 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmHWM":
			hwm = kb * 1024
		case "RssAnon":
			anon = kb * 1024
		}
	}
	return hwm, anon
}

type point struct{ x, y float64 }

// sweepChart draws throughput against concurrency for both clients.
func sweepChart(total int64, series [][]point) string {
	return lineChart(
		fmt.Sprintf("Pull of 8 × %d MiB over the emulated WAN\n40 ms RTT, 40 MB/s and 4 MiB in flight per connection, 400 MB/s link", total>>23),
		"concurrency (modelattest: --max-connections; oras: --concurrency)", "MB/s",
		[]string{"modelattest", "oras"}, series, 400)
}

// lineChart draws series as an SVG line chart with a log2 x axis and a
// dashed line at ceiling (the link's capacity).
func lineChart(title, xLabel, yLabel string, names []string, series [][]point, ceiling float64) string {
	const w, h, left, right, top, bottom = 720.0, 420.0, 70.0, 130.0, 56.0, 60.0
	var xs []float64
	ymax := ceiling
	for _, s := range series {
		for _, p := range s {
			xs = append(xs, p.x)
			ymax = max(ymax, p.y)
		}
	}
	if len(xs) == 0 {
		return ""
	}
	slices.Sort(xs)
	xs = slices.Compact(xs)
	ymax = float64(int(ymax/100)+1) * 100
	lx := func(x float64) float64 {
		lo, hi := log2(xs[0]), log2(xs[len(xs)-1])
		if hi == lo {
			return left
		}
		return left + (log2(x)-lo)/(hi-lo)*(w-left-right)
	}
	ly := func(y float64) float64 { return top + (1-y/ymax)*(h-top-bottom) }
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&sb, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	for i, line := range strings.Split(title, "\n") {
		fmt.Fprintf(&sb, `<text x="%.0f" y="%d" font-size="13" font-weight="bold">%s</text>`+"\n", left, 18+16*i, xmlEscape(line))
	}
	for y := 0.0; y <= ymax; y += 100 {
		fmt.Fprintf(&sb, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%.1f" y="%.1f" text-anchor="end">%.0f</text>`+"\n", left, w-right, ly(y), ly(y), left-6, ly(y)+4, y)
	}
	for _, x := range xs {
		fmt.Fprintf(&sb, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%.1f" y="%.1f" text-anchor="middle">%.0f</text>`+"\n", lx(x), lx(x), top, h-bottom, lx(x), h-bottom+16, x)
	}
	fmt.Fprintf(&sb, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#999" stroke-dasharray="6 4"/><text x="%.1f" y="%.1f" fill="#666">link %.0f MB/s</text>`+"\n", left, w-right, ly(ceiling), ly(ceiling), left+6, ly(ceiling)-6, ceiling)
	fmt.Fprintf(&sb, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", (left+w-right)/2, h-16, xmlEscape(xLabel))
	fmt.Fprintf(&sb, `<text transform="translate(18 %.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", (top+h-bottom)/2, xmlEscape(yLabel))
	colors := []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e"}
	for i, s := range series {
		c := colors[i%len(colors)]
		var pts []string
		for _, p := range s {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", lx(p.x), ly(p.y)))
			fmt.Fprintf(&sb, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>`+"\n", lx(p.x), ly(p.y), c)
		}
		fmt.Fprintf(&sb, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", c, strings.Join(pts, " "))
		fmt.Fprintf(&sb, `<rect x="%.1f" y="%.1f" width="12" height="12" fill="%s"/><text x="%.1f" y="%.1f">%s</text>`+"\n", w-right+10, top+30+float64(i)*20, c, w-right+28, top+40+float64(i)*20, xmlEscape(names[i]))
	}
	sb.WriteString("</svg>\n")
	return sb.String()
}

func log2(x float64) float64 { return math.Log2(x) }

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
