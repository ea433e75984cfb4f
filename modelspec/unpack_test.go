package modelspec

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestCleanPath(t *testing.T) {
	ok := []string{"model.bin", "a/b/c.json", "with space.txt", "ünïcode.md", ".hidden", "a..b"}
	for _, p := range ok {
		if got, err := CleanPath(p); err != nil || got != p {
			t.Errorf("CleanPath(%q) = %q, %v", p, got, err)
		}
	}
	bad := []string{"", "/etc/passwd", "../x", "a/../../x", "a/..", "..", "./a", "a//b", "a/", "a/./b",
		`a\b`, `..\..\x`, "C:/x", "c:x", "a\x00b", "\xff"}
	for _, p := range bad {
		if _, err := CleanPath(p); !errors.Is(err, ErrUnsafePath) {
			t.Errorf("CleanPath(%q): err = %v, want ErrUnsafePath", p, err)
		}
	}
}

func rawLayer(p, content string) ocispec.Descriptor {
	return ocispec.Descriptor{
		MediaType: KindOf(p).MediaType(), Digest: digest.FromString(content), Size: int64(len(content)),
		Annotations: map[string]string{AnnotationFilepath: p},
	}
}

func manifestOf(layers ...ocispec.Descriptor) ocispec.Manifest {
	return ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Layers: layers}
}

func TestPlanRefusesHostileManifests(t *testing.T) {
	tests := map[string]struct {
		m    ocispec.Manifest
		want string
	}{
		"dot-dot":        {manifestOf(rawLayer("../evil", "x")), "escapes"},
		"deep dot-dot":   {manifestOf(rawLayer("a/../../evil", "x")), "escapes"},
		"absolute":       {manifestOf(rawLayer("/etc/cron.d/evil", "x")), "absolute"},
		"duplicate":      {manifestOf(rawLayer("a.bin", "x"), rawLayer("a.bin", "y")), "duplicate"},
		"case collision": {manifestOf(rawLayer("A.bin", "x"), rawLayer("a.bin", "y")), "case"},
		"file is dir":    {manifestOf(rawLayer("a", "x"), rawLayer("a/b", "y")), "directory"},
		"dir is file":    {manifestOf(rawLayer("a/b", "x"), rawLayer("a", "y")), "directory"},
		"no layers":      {manifestOf(), "no layers"},
		"unknown type":   {manifestOf(ocispec.Descriptor{MediaType: "application/x-evil", Digest: digest.FromString("x")}), "not a model layer"},
		"no path":        {manifestOf(ocispec.Descriptor{MediaType: KindWeight.MediaType(), Digest: digest.FromString("x")}), "no file path"},
		"bad digest":     {manifestOf(ocispec.Descriptor{MediaType: KindWeight.MediaType(), Digest: "sha256:zz", Annotations: map[string]string{AnnotationFilepath: "a"}}), "invalid"},
		"path too long":  {manifestOf(rawLayer(strings.Repeat("x", 200)+"/"+strings.Repeat("y", MaxPathBytes), "x")), "over MaxPathBytes (1024)"},
		"path too deep":  {manifestOf(rawLayer(strings.Repeat("a/", MaxPathDepth)+"f", "x")), "65 names deep, over MaxPathDepth (64)"},
		"too many layers": {manifestOf(func() []ocispec.Descriptor {
			ls := make([]ocispec.Descriptor, MaxLayers+1)
			for i := range ls {
				ls[i] = rawLayer(fmt.Sprintf("f%d", i), "x")
			}
			return ls
		}()...), "10001 layers: over a limit: MaxLayers is 10000"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Plan(tt.m)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Plan: err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestPlanReadsOtherFormats(t *testing.T) {
	m := manifestOf(
		ocispec.Descriptor{MediaType: "application/vnd.cnai.model.weight.v1.raw", Digest: digest.FromString("w"), Size: 1,
			Annotations: map[string]string{"org.cnai.model.filepath": "legacy.bin", "org.cnai.model.file.metadata+json": `{"mode":493}`}},
		ocispec.Descriptor{MediaType: "application/vnd.docker.ai.gguf.v3", Digest: digest.FromString("g"), Size: 1,
			Annotations: map[string]string{AnnotationTitle: "model.gguf"}},
		ocispec.Descriptor{MediaType: "application/vnd.kitops.modelkit.code.v1.tar+gzip", Digest: digest.FromString("t"), Size: 1,
			Annotations: map[string]string{AnnotationTitle: "src"}},
	)
	entries, err := Plan(m)
	if err != nil {
		t.Fatal(err)
	}
	if entries[0].Path != "legacy.bin" || entries[0].Mode != 0o755 || entries[0].Archive() {
		t.Errorf("legacy entry %+v", entries[0])
	}
	if entries[1].Path != "model.gguf" || entries[1].Kind != KindWeight {
		t.Errorf("docker entry %+v", entries[1])
	}
	if !entries[2].Archive() || entries[2].Kind != KindCode || entries[2].Format() != "tar+gzip" {
		t.Errorf("kitops entry %+v", entries[2])
	}
}

func TestPlanNeverAppliesSpecialModeBits(t *testing.T) {
	l := rawLayer("run.sh", "x")
	l.Annotations[AnnotationFileMetadata] = `{"mode":3565}` // 06755: setuid, setgid
	entries, err := Plan(manifestOf(l))
	if err != nil {
		t.Fatal(err)
	}
	if entries[0].Mode != 0o755 {
		t.Fatalf("mode %v, want 0755", entries[0].Mode)
	}
}

// TestPlanNeverWidensModes: a mode is unsigned metadata; whatever the
// annotation says, a pulled file is never group- or world-writable.
func TestPlanNeverWidensModes(t *testing.T) {
	for annotated, want := range map[fs.FileMode]fs.FileMode{
		0o777: 0o755, 0o666: 0o644, 0o4777: 0o755, 0o2775: 0o755, 0o640: 0o640, 0o700: 0o700,
	} {
		l := rawLayer("run.sh", "x")
		// The annotation holds a Go FileMode as a number: setuid is fs.ModeSetuid, not 04000.
		mode := annotated.Perm()
		if annotated&0o4000 != 0 {
			mode |= fs.ModeSetuid
		}
		if annotated&0o2000 != 0 {
			mode |= fs.ModeSetgid
		}
		for _, raw := range []uint32{uint32(mode), uint32(annotated)} {
			l.Annotations[AnnotationFileMetadata] = fmt.Sprintf(`{"mode":%d}`, raw)
			entries, err := Plan(manifestOf(l))
			if err != nil {
				t.Fatal(err)
			}
			if entries[0].Mode != want {
				t.Errorf("annotated %#o (%d): mode %#o, want %#o", annotated, raw, entries[0].Mode, want)
			}
		}
	}
	u, _ := NewUnpacker(nil)
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: "x", Typeflag: tar.TypeReg, Mode: 0o4777, Size: 1})
	tw.Write([]byte("x"))
	tw.Close()
	err := u.Extract(archiveEntry("application/vnd.cncf.model.code.v1.tar"), &b, func(_ string, mode fs.FileMode, _ int64, r io.Reader) error {
		if mode != 0o755 {
			t.Errorf("archive member 04777: mode %#o, want 0755", mode)
		}
		_, err := io.Copy(io.Discard, r)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestFilter(t *testing.T) {
	entries, err := Plan(manifestOf(rawLayer("model.safetensors", "w"), rawLayer("config.json", "c"), rawLayer("docs/README.md", "r")))
	if err != nil {
		t.Fatal(err)
	}
	names := func(es []Entry) string {
		var s []string
		for _, e := range es {
			s = append(s, e.Path)
		}
		return strings.Join(s, ",")
	}
	for _, tt := range []struct {
		patterns []string
		want     string
	}{
		{nil, "model.safetensors,config.json,docs/README.md"},
		{[]string{"kind:weight"}, "model.safetensors"},
		{[]string{"*.json", "README.md"}, "config.json,docs/README.md"},
		{[]string{"docs/*"}, "docs/README.md"},
	} {
		got, err := Filter(entries, tt.patterns)
		if err != nil || names(got) != tt.want {
			t.Errorf("Filter(%v) = %s, %v; want %s", tt.patterns, names(got), err, tt.want)
		}
	}
	for _, bad := range [][]string{{"kind:weights"}, {"["}, {"nothing-matches"}} {
		if _, err := Filter(entries, bad); err == nil {
			t.Errorf("Filter(%v): no error", bad)
		}
	}
}

type member struct {
	name     string
	typeflag byte
	body     string
	link     string
}

func makeTar(t *testing.T, members ...member) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range members {
		h := &tar.Header{Name: m.name, Typeflag: m.typeflag, Mode: 0o640, Size: int64(len(m.body)), Linkname: m.link}
		if m.typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if m.typeflag == tar.TypeReg {
			tw.Write([]byte(m.body))
		}
	}
	tw.Close()
	return buf.Bytes()
}

func archiveEntry(mt string) Entry {
	_, f, _ := parseLayerMediaType(mt)
	return Entry{Layer: ocispec.Descriptor{MediaType: mt, Digest: digest.FromString("layer")}, format: f}
}

func TestExtract(t *testing.T) {
	tb := makeTar(t, member{name: "src/", typeflag: tar.TypeDir}, member{name: "src/a.py", typeflag: tar.TypeReg, body: "print(1)"},
		member{name: "./b.txt", typeflag: tar.TypeReg, body: "b"})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tb)
	zw.Close()
	var zs bytes.Buffer
	enc, _ := zstd.NewWriter(&zs)
	enc.Write(tb)
	enc.Close()
	for mt, data := range map[string][]byte{
		"application/vnd.cncf.model.code.v1.tar":      tb,
		"application/vnd.cncf.model.code.v1.tar+gzip": gz.Bytes(),
		"application/vnd.cncf.model.code.v1.tar+zstd": zs.Bytes(),
	} {
		u, _ := NewUnpacker(nil)
		got := map[string]string{}
		err := u.Extract(archiveEntry(mt), bytes.NewReader(data), func(p string, mode fs.FileMode, size int64, r io.Reader) error {
			b, _ := io.ReadAll(r)
			got[p] = string(b) + "|" + mode.String()
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", mt, err)
		}
		if got["src/a.py"] != "print(1)|-rw-r-----" || got["b.txt"] != "b|-rw-r-----" || len(got) != 2 {
			t.Errorf("%s: extracted %v", mt, got)
		}
	}
}

func TestExtractRefusesHostileArchives(t *testing.T) {
	tests := map[string]struct {
		members []member
		want    string
	}{
		"dot-dot":      {[]member{{name: "../../etc/passwd", typeflag: tar.TypeReg, body: "x"}}, "escapes"},
		"absolute":     {[]member{{name: "/etc/passwd", typeflag: tar.TypeReg, body: "x"}}, "absolute"},
		"symlink":      {[]member{{name: "link", typeflag: tar.TypeSymlink, link: "/etc"}}, "not a regular file"},
		"hardlink":     {[]member{{name: "link", typeflag: tar.TypeLink, link: "/etc/passwd"}}, "not a regular file"},
		"device":       {[]member{{name: "dev", typeflag: tar.TypeChar}}, "not a regular file"},
		"fifo":         {[]member{{name: "fifo", typeflag: tar.TypeFifo}}, "not a regular file"},
		"duplicate":    {[]member{{name: "a", typeflag: tar.TypeReg, body: "1"}, {name: "a", typeflag: tar.TypeReg, body: "2"}}, "duplicate"},
		"case folding": {[]member{{name: "A", typeflag: tar.TypeReg, body: "1"}, {name: "a", typeflag: tar.TypeReg, body: "2"}}, "case"},
		"raw clash":    {[]member{{name: "model.bin", typeflag: tar.TypeReg, body: "1"}}, "duplicate"},
		"dir escape":   {[]member{{name: "../", typeflag: tar.TypeDir}}, "escapes"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			u, err := NewUnpacker([]Entry{{Path: "model.bin"}})
			if err != nil {
				t.Fatal(err)
			}
			var written []string
			err = u.Extract(archiveEntry("application/vnd.cncf.model.code.v1.tar"), bytes.NewReader(makeTar(t, tt.members...)),
				func(p string, _ fs.FileMode, _ int64, _ io.Reader) error { written = append(written, p); return nil })
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), "layer sha256:") {
				t.Errorf("error %q does not name the layer", err)
			}
			for _, w := range written {
				if strings.Contains(w, "..") || strings.HasPrefix(w, "/") {
					t.Errorf("handed out unsafe path %q", w)
				}
			}
		})
	}
}

func TestExtractBoundsExpansion(t *testing.T) {
	u, _ := NewUnpacker(nil)
	u.MaxArchiveBytes = 10
	data := makeTar(t, member{name: "big", typeflag: tar.TypeReg, body: strings.Repeat("x", 11)})
	err := u.Extract(archiveEntry("application/vnd.cncf.model.code.v1.tar"), bytes.NewReader(data),
		func(string, fs.FileMode, int64, io.Reader) error {
			t.Fatal("handed out a member past the bound")
			return nil
		})
	if err == nil || !strings.Contains(err.Error(), "expands past") {
		t.Fatalf("err = %v", err)
	}
}
