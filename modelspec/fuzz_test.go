package modelspec

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// FuzzCleanPath: whatever the name, an accepted path is relative, canonical
// and never climbs out.
func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"model.bin", "a/b/c", "../x", "/etc/passwd", "a//b", `a\b`, "C:/x", "a/./b", "ü/ß", "a\x00b", ".hidden/..x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		got, err := CleanPath(p)
		if err != nil {
			if !errors.Is(err, ErrUnsafePath) {
				t.Fatalf("error %v is not ErrUnsafePath", err)
			}
			return
		}
		if got != p || strings.HasPrefix(p, "/") || strings.Contains(p, `\`) || strings.Contains(p, "\x00") {
			t.Fatalf("accepted %q", p)
		}
		for _, c := range strings.Split(p, "/") {
			if c == ".." || c == "." || c == "" {
				t.Fatalf("accepted %q", p)
			}
		}
	})
}

// FuzzPlan: a manifest from a registry either plans into safe, distinct
// paths or is refused; it never panics.
func FuzzPlan(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"layers":[{"mediaType":"application/vnd.cncf.model.weight.v1.raw","digest":"sha256:` + strings.Repeat("a", 64) + `","size":1,"annotations":{"org.cncf.model.filepath":"m.bin"}}]}`))
	f.Add([]byte(`{"layers":[{"mediaType":"application/vnd.cncf.model.doc.v1.tar","digest":"sha256:` + strings.Repeat("b", 64) + `","size":-1}]}`))
	f.Add([]byte(`{"layers":[{"mediaType":"application/vnd.cncf.model.weight.v1.raw","digest":"sha256:x","annotations":{"org.cncf.model.filepath":"../x"}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m ocispec.Manifest
		if json.Unmarshal(b, &m) != nil {
			return
		}
		entries, err := Plan(m)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, e := range entries {
			if e.Archive() {
				continue
			}
			if _, err := CleanPath(e.Path); err != nil {
				t.Fatalf("planned unsafe path %q", e.Path)
			}
			if seen[strings.ToLower(e.Path)] {
				t.Fatalf("planned %q twice", e.Path)
			}
			seen[strings.ToLower(e.Path)] = true
			if e.Mode&^fs.ModePerm != 0 {
				t.Fatalf("mode %v carries more than permission bits", e.Mode)
			}
		}
	})
}

// FuzzParseConfig: a config either parses into a valid one or is refused.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"descriptor":{"name":"x"},"config":{},"modelfs":{"type":"layers","diffIds":["sha256:` + strings.Repeat("a", 64) + `"]}}`))
	f.Add([]byte(`{"descriptor":{},"config":{"format":"gguf"},"modelfs":{"type":"layers","diffIds":[]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("ParseConfig accepted an invalid config: %v", err)
		}
	})
}

// FuzzExtract: whatever a tar layer holds, only regular files with safe,
// distinct paths are handed out, and never more bytes than declared.
func FuzzExtract(f *testing.F) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "a/b.txt", Typeflag: tar.TypeReg, Size: 2, Mode: 0o644})
	tw.Write([]byte("hi"))
	tw.WriteHeader(&tar.Header{Name: "../evil", Typeflag: tar.TypeReg, Size: 0})
	tw.WriteHeader(&tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "/etc"})
	tw.Close()
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		u, _ := NewUnpacker(nil)
		u.MaxArchiveBytes = 1 << 20
		e := Entry{Layer: ocispec.Descriptor{Digest: digest.Digest("sha256:" + strings.Repeat("0", 64))}, format: formatTar}
		seen := map[string]bool{}
		_ = u.Extract(e, bytes.NewReader(b), func(p string, mode fs.FileMode, size int64, r io.Reader) error {
			if _, err := CleanPath(p); err != nil || seen[strings.ToLower(p)] {
				t.Fatalf("handed out %q", p)
			}
			seen[strings.ToLower(p)] = true
			n, _ := io.Copy(io.Discard, io.LimitReader(r, size+1))
			if n > size {
				t.Fatalf("%q: read %d bytes, declared %d", p, n, size)
			}
			return nil
		})
	})
}
