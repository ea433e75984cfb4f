package oras_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	orasgo "oras.land/oras-go/v2"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/modelspec"
	"github.com/modelattest/modelattest/oras"
)

var created = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func openRemote(t *testing.T, host, repo string, mode oras.ReferrersMode) *oras.Target {
	t.Helper()
	tgt, err := oras.OpenRemote(context.Background(), host+"/"+repo, oras.RemoteOptions{PlainHTTP: true, DistributionSpec: mode})
	if err != nil {
		t.Fatal(err)
	}
	return tgt
}

func layout(t *testing.T) *oras.Target {
	t.Helper()
	tgt, err := oras.OpenLayout(filepath.Join(t.TempDir(), "layout"))
	if err != nil {
		t.Fatal(err)
	}
	return tgt
}

func push(t *testing.T, dst orasgo.Target, dir string) ocispec.Descriptor {
	t.Helper()
	desc, err := oras.Push(context.Background(), dst, "v1", dir, oras.PushOptions{Created: created, Metadata: modelspec.Metadata{Name: "tiny"}})
	if err != nil {
		t.Fatal(err)
	}
	return desc
}

func TestRoundTrip(t *testing.T) {
	targets := map[string]func(t *testing.T) *oras.Target{
		"embedded registry": func(t *testing.T) *oras.Target { return openRemote(t, regtest.Embedded(t, ""), "models/tiny", "") },
		"oci layout":        layout,
	}
	for name, open := range targets {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			model := regtest.ModelDir(t, 1<<20)
			tgt := open(t)
			desc := push(t, tgt, model)
			if again := push(t, tgt, model); again.Digest != desc.Digest {
				t.Fatalf("pushing the same directory twice gave %s and %s", desc.Digest, again.Digest)
			}
			resolved, err := oras.Resolve(ctx, tgt, "v1")
			if err != nil || resolved.Digest != desc.Digest {
				t.Fatalf("resolve v1 = %v, %v; want %s", resolved.Digest, err, desc.Digest)
			}
			out := filepath.Join(t.TempDir(), "out")
			res, err := oras.Pull(ctx, tgt, resolved, out, oras.PullOptions{})
			if err != nil {
				t.Fatal(err)
			}
			regtest.SameTree(t, model, out)
			if len(res.Files) != 6 {
				t.Fatalf("pulled %d files, want 6", len(res.Files))
			}
			// Nothing is left beside the output directory.
			if got := regtest.Entries(t, filepath.Dir(out)); len(got) != 1 {
				t.Fatalf("beside the output: %v", got)
			}
		})
	}
}

func TestPullSkipsFilesAlreadyPresent(t *testing.T) {
	ctx := context.Background()
	proxy := regtest.NewProxy(t, regtest.Embedded(t, ""))
	tgt := openRemote(t, proxy.Host, "models/tiny", "")
	model := regtest.ModelDir(t, 4096)
	desc := push(t, tgt, model)
	out := filepath.Join(t.TempDir(), "out")
	if _, err := oras.Pull(ctx, tgt, desc, out, oras.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	// Damage one file: only that one may be fetched again.
	if err := os.WriteFile(filepath.Join(out, "README.md"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	proxy.Reset()
	res, err := oras.Pull(ctx, tgt, desc, out, oras.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Files {
		want := oras.FilePresent
		if f.Path == "README.md" {
			want = oras.FileDownloaded
		}
		if f.Status != want {
			t.Errorf("%s: %s, want %s", f.Path, f.Status, want)
		}
	}
	if n := proxy.Count("GET", "/v2/models/tiny/blobs/"); n != 2 { // the config and README.md
		t.Errorf("%d blob GETs, want 2", n)
	}
	regtest.SameTree(t, model, out)
}

func TestPullInclude(t *testing.T) {
	ctx := context.Background()
	tgt := layout(t)
	desc := push(t, tgt, regtest.ModelDir(t, 100))
	out := filepath.Join(t.TempDir(), "out")
	if _, err := oras.Pull(ctx, tgt, desc, out, oras.PullOptions{Include: []string{"kind:weight", "*.md"}}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range regtest.Tree(t, out) {
		got = append(got, f.Path)
	}
	if strings.Join(got, ",") != "README.md,model.safetensors" {
		t.Fatalf("pulled %v", got)
	}
}

// assertNothingWritten checks that a failed pull left no output directory,
// no partial download and nothing outside.
func assertNothingWritten(t *testing.T, out string) {
	t.Helper()
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("output directory exists after a failed pull: %v", regtest.Entries(t, out))
	}
	parent := filepath.Dir(out)
	for _, name := range regtest.Entries(t, parent) {
		if name == filepath.Base(out) {
			continue
		}
		for _, staged := range regtest.Entries(t, filepath.Join(parent, name)) {
			if strings.Contains(staged, ".part") || strings.HasPrefix(staged, "x-") {
				t.Errorf("partial file left behind: %s/%s", name, staged)
			}
		}
		if !strings.HasSuffix(name, ".modelattest-partial") {
			t.Errorf("unexpected file beside the output: %s", name)
		}
	}
}

func TestPullRefusesTamperedBlobs(t *testing.T) {
	model := regtest.ModelDir(t, 64<<10)
	weights, _ := os.ReadFile(filepath.Join(model, "model.safetensors"))
	weightsPath := "/blobs/" + digest.FromBytes(weights).String()
	tests := map[string]func(body []byte) []byte{
		"one byte flipped": func(b []byte) []byte { b = bytes.Clone(b); b[len(b)/2] ^= 1; return b },
		"truncated":        func(b []byte) []byte { return b[:len(b)-1] },
		"extended":         func(b []byte) []byte { return append(bytes.Clone(b), 0) },
		"swapped":          func(b []byte) []byte { return bytes.Repeat([]byte{7}, len(b)) },
	}
	for name, tamper := range tests {
		t.Run(name, func(t *testing.T) {
			proxy := regtest.NewProxy(t, regtest.Embedded(t, ""))
			tgt := openRemote(t, proxy.Host, "models/tiny", "")
			desc := push(t, tgt, model)
			proxy.SetTamper(func(r *http.Request, body []byte) []byte {
				if strings.HasSuffix(r.URL.Path, weightsPath) {
					return tamper(body)
				}
				return body
			})
			out := filepath.Join(t.TempDir(), "out")
			_, err := oras.Pull(context.Background(), tgt, desc, out, oras.PullOptions{})
			if !errors.Is(err, oras.ErrIntegrity) {
				t.Fatalf("err = %v, want ErrIntegrity", err)
			}
			if !strings.Contains(err.Error(), "model.safetensors") {
				t.Errorf("error %q does not name the file", err)
			}
			assertNothingWritten(t, out)
		})
	}
}

func TestPullRefusesTamperedManifestAndConfig(t *testing.T) {
	model := regtest.ModelDir(t, 100)
	proxy := regtest.NewProxy(t, regtest.Embedded(t, ""))
	tgt := openRemote(t, proxy.Host, "models/tiny", "")
	desc := push(t, tgt, model)
	m, _, err := oras.FetchManifest(context.Background(), tgt, desc)
	if err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{
		"manifest": "/manifests/" + desc.Digest.String(),
		"config":   "/blobs/" + m.Config.Digest.String(),
	} {
		t.Run(name, func(t *testing.T) {
			proxy.SetTamper(func(r *http.Request, body []byte) []byte {
				if strings.HasSuffix(r.URL.Path, path) {
					body = bytes.Replace(body, []byte(`"tiny"`), []byte(`"evil"`), 1) // the config's name
					return bytes.Replace(body, []byte("model.safetensors"), []byte("model.safetensorz"), 2)
				}
				return body
			})
			defer proxy.SetTamper(nil)
			out := filepath.Join(t.TempDir(), "out")
			_, err := oras.Pull(context.Background(), tgt, desc, out, oras.PullOptions{})
			if !errors.Is(err, oras.ErrIntegrity) {
				t.Fatalf("err = %v, want ErrIntegrity", err)
			}
			assertNothingWritten(t, out)
		})
	}
}

// pushManifest stores a hand-made manifest (and the blobs it names) in a
// layout, bypassing every check a packer would make.
func pushManifest(t *testing.T, tgt orasgo.Target, m ocispec.Manifest, blobs map[digest.Digest][]byte) ocispec.Descriptor {
	t.Helper()
	ctx := context.Background()
	for d, b := range blobs {
		if err := tgt.Push(ctx, ocispec.Descriptor{MediaType: "application/octet-stream", Digest: d, Size: int64(len(b))}, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}
	mb, _ := json.Marshal(m)
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(mb), Size: int64(len(mb))}
	if err := tgt.Push(ctx, desc, bytes.NewReader(mb)); err != nil {
		t.Fatal(err)
	}
	return desc
}

func hostileManifest(paths ...string) (ocispec.Manifest, map[digest.Digest][]byte) {
	cfg := []byte("{}")
	blobs := map[digest.Digest][]byte{digest.FromBytes(cfg): cfg}
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: "application/vnd.oci.empty.v1+json", Digest: digest.FromBytes(cfg), Size: 2},
	}
	for i, p := range paths {
		b := []byte(strings.Repeat("x", i+1))
		blobs[digest.FromBytes(b)] = b
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: modelspec.KindWeight.MediaType(), Digest: digest.FromBytes(b),
			Size: int64(len(b)), Annotations: map[string]string{modelspec.AnnotationFilepath: p}})
	}
	return m, blobs
}

func TestPullRefusesHostilePaths(t *testing.T) {
	tests := map[string][]string{
		"dot-dot":        {"ok.bin", "../escaped.bin"},
		"absolute":       {"/tmp/escaped.bin"},
		"duplicate":      {"a.bin", "a.bin"},
		"case collision": {"Model.bin", "model.bin"},
	}
	for name, paths := range tests {
		t.Run(name, func(t *testing.T) {
			tgt := layout(t)
			m, blobs := hostileManifest(paths...)
			desc := pushManifest(t, tgt, m, blobs)
			work := t.TempDir()
			out := filepath.Join(work, "out")
			_, err := oras.Pull(context.Background(), tgt, desc, out, oras.PullOptions{})
			if !errors.Is(err, modelspec.ErrUnsafePath) {
				t.Fatalf("err = %v, want ErrUnsafePath", err)
			}
			if got := regtest.Entries(t, work); len(got) != 0 {
				t.Fatalf("written next to the output: %v", got)
			}
		})
	}
}

func TestPullRefusesSymlinkInOutputDirectory(t *testing.T) {
	tgt := layout(t)
	m, blobs := hostileManifest("sub/model.bin")
	desc := pushManifest(t, tgt, m, blobs)
	work := t.TempDir()
	out := filepath.Join(work, "out")
	victim := filepath.Join(work, "victim")
	os.MkdirAll(out, 0o755)
	os.MkdirAll(victim, 0o755)
	if err := os.Symlink(victim, filepath.Join(out, "sub")); err != nil {
		t.Fatal(err)
	}
	_, err := oras.Pull(context.Background(), tgt, desc, out, oras.PullOptions{})
	if !errors.Is(err, modelspec.ErrUnsafePath) {
		t.Fatalf("err = %v, want ErrUnsafePath", err)
	}
	if got := regtest.Entries(t, victim); len(got) != 0 {
		t.Fatalf("written through the symlink: %v", got)
	}
}

func TestPullRefusesOversizedManifest(t *testing.T) {
	tgt := layout(t)
	m, blobs := hostileManifest("a.bin")
	m.Annotations = map[string]string{"padding": strings.Repeat("p", oras.MaxManifestBytes)}
	desc := pushManifest(t, tgt, m, blobs)
	out := filepath.Join(t.TempDir(), "out")
	_, err := oras.Pull(context.Background(), tgt, desc, out, oras.PullOptions{})
	if err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("err = %v, want a size-limit error", err)
	}
	// A registry that lies about the size in the descriptor is caught by
	// the verifying read.
	desc.Size = 1000
	if _, err := oras.Pull(context.Background(), tgt, desc, out, oras.PullOptions{}); err == nil {
		t.Fatal("a manifest larger than its descriptor was read")
	}
	assertNothingWritten(t, out)
}

func TestPullResumesAfterFailure(t *testing.T) {
	ctx := context.Background()
	proxy := regtest.NewProxy(t, regtest.Embedded(t, ""))
	tgt := openRemote(t, proxy.Host, "models/tiny", "")
	model := regtest.ModelDir(t, 256<<10)
	desc := push(t, tgt, model)
	weights, _ := os.ReadFile(filepath.Join(model, "model.safetensors"))
	weightsPath := "/blobs/" + digest.FromBytes(weights).String()
	proxy.SetFault(func(r *http.Request) int {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, weightsPath) {
			return http.StatusNotFound
		}
		return 0
	})
	out := filepath.Join(t.TempDir(), "out")
	_, err := oras.Pull(ctx, tgt, desc, out, oras.PullOptions{Concurrency: 1})
	if err == nil || !strings.Contains(err.Error(), "3 verified blobs kept") {
		t.Fatalf("err = %v, want a failure that offers a resume", err)
	}
	assertNothingWritten(t, out)

	proxy.SetFault(nil)
	proxy.Reset()
	res, err := oras.Pull(ctx, tgt, desc, out, oras.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// One at a time in path order, the first run verified README.md,
	// config.json and empty.txt before the weights failed and the rest
	// were cancelled.
	want := map[string]oras.FileStatus{"README.md": "resumed", "config.json": "resumed", "empty.txt": "resumed",
		"model.safetensors": "downloaded", "scripts/convert.py": "downloaded", "tokenizer.json": "downloaded"}
	for _, f := range res.Files {
		if want[f.Path] != f.Status {
			t.Errorf("%s: %s, want %s", f.Path, f.Status, want[f.Path])
		}
	}
	if n := proxy.Count("GET", "/v2/models/tiny/blobs/"); n != 4 { // config + the three not verified before
		t.Errorf("%d blob GETs on resume, want 4", n)
	}
	regtest.SameTree(t, model, out)
	if got := regtest.Entries(t, filepath.Dir(out)); len(got) != 1 {
		t.Fatalf("staging left after success: %v", got)
	}
}

func TestPushSkipsUnchangedFilesTheRegistryHas(t *testing.T) {
	ctx := context.Background()
	proxy := regtest.NewProxy(t, regtest.Embedded(t, ""))
	tgt := openRemote(t, proxy.Host, "models/tiny", "")
	model := regtest.ModelDir(t, 40<<20) // big enough to stream
	opts := oras.PushOptions{Created: created, DigestCacheDir: t.TempDir()}
	first, err := oras.Push(ctx, tgt, "v1", model, opts)
	if err != nil {
		t.Fatal(err)
	}
	if n := proxy.Count("PATCH", "/v2/models/tiny/blobs/uploads/"); n != 1 {
		t.Errorf("%d streamed uploads on the first push, want 1 (the weights)", n)
	}
	proxy.Reset()
	second, err := oras.Push(ctx, tgt, "v1", model, opts)
	if err != nil {
		t.Fatal(err)
	}
	if first.Digest != second.Digest {
		t.Fatalf("digests differ: %s, %s", first.Digest, second.Digest)
	}
	if n := proxy.Count("POST", "/v2/"); n != 0 {
		t.Errorf("%d uploads started on an unchanged re-push, want 0", n)
	}
	if n := proxy.Count("HEAD", "/v2/models/tiny/blobs/"); n < 6 {
		t.Errorf("%d existence checks, want one per file", n)
	}

	// Change a file in place and put its mtime back: ctime still moves, so
	// the file is read and uploaded again.
	p := filepath.Join(model, "README.md")
	fi, _ := os.Stat(p)
	if err := os.WriteFile(p, []byte("# changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(p, fi.ModTime(), fi.ModTime())
	proxy.Reset()
	third, err := oras.Push(ctx, tgt, "v1", model, opts)
	if err != nil {
		t.Fatal(err)
	}
	if third.Digest == first.Digest {
		t.Fatal("a changed file kept the manifest digest: the cache was trusted over the file")
	}
	if n := proxy.Count("POST", "/v2/models/tiny/blobs/uploads/"); n != 2 { // README.md and the new config
		t.Errorf("%d uploads after one change, want 2", n)
	}
}

// TestPushThroughBodyCappingProxy: a proxy in front of the registry refuses
// request bodies over 1 MiB with 413, as nginx does by default; both the
// one-request upload of a small file and the streamed upload of a big one
// fall back to chunks, and the model arrives intact.
func TestPushThroughBodyCappingProxy(t *testing.T) {
	ctx := context.Background()
	proxy := regtest.NewProxy(t, regtest.Embedded(t, ""))
	proxy.SetFault(func(r *http.Request) int {
		if r.ContentLength > 1<<20 {
			return http.StatusRequestEntityTooLarge
		}
		return 0
	})
	tgt := openRemote(t, proxy.Host, "models/capped", "")
	model := regtest.ModelDir(t, 40<<20)                                                     // streamed
	os.WriteFile(filepath.Join(model, "small.bin"), bytes.Repeat([]byte("s"), 3<<20), 0o644) // one request
	desc, err := oras.Push(ctx, tgt, "v1", model, oras.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := proxy.Count("PATCH", "/v2/models/capped/blobs/uploads/"); n < 40 {
		t.Fatalf("%d PATCH requests: the upload did not fall back to chunks", n)
	}
	proxy.SetFault(nil)
	out := filepath.Join(t.TempDir(), "out")
	if _, err := oras.Pull(ctx, tgt, desc, out, oras.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	regtest.SameTree(t, model, out)
}
