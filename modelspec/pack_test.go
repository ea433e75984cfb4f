package modelspec

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// writeTree creates files (path → content) below a new temp dir.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestScanOrderKindsAndOverrides(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"z.safetensors": "w", "a/README.md": "r", "B.py": "c", "eval/scores.json": "{}", "skip/me.bin": "x",
	})
	files, err := Scan(dir, WithKind("eval/*", KindDataset), WithExclude("skip"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, f.Path+"="+string(f.Kind))
	}
	want := "B.py=code a/README.md=doc eval/scores.json=dataset z.safetensors=weight"
	if strings.Join(got, " ") != want {
		t.Errorf("Scan = %v\nwant %v", got, want)
	}
}

func TestScanRefuses(t *testing.T) {
	t.Run("symlink", func(t *testing.T) {
		dir := writeTree(t, map[string]string{"a.bin": "x"})
		if err := os.Symlink("/etc/passwd", filepath.Join(dir, "link")); err != nil {
			t.Fatal(err)
		}
		_, err := Scan(dir)
		if err == nil || !strings.Contains(err.Error(), `"link"`) {
			t.Fatalf("err = %v, want one naming the symlink", err)
		}
	})
	t.Run("empty", func(t *testing.T) {
		if _, err := Scan(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no files") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("case collision", func(t *testing.T) {
		dir := writeTree(t, map[string]string{"Model.bin": "a", "model.bin": "b"})
		if _, err := Scan(dir); err == nil || !strings.Contains(err.Error(), "case is folded") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("bad kind", func(t *testing.T) {
		dir := writeTree(t, map[string]string{"a.bin": "x"})
		if _, err := Scan(dir, WithKind("*", "weights")); err == nil {
			t.Fatal("want an error for an unknown kind")
		}
	})
	t.Run("not a directory", func(t *testing.T) {
		dir := writeTree(t, map[string]string{"a.bin": "x"})
		if _, err := Scan(filepath.Join(dir, "a.bin")); err == nil {
			t.Fatal("want an error")
		}
	})
}

func layersFor(t *testing.T, files []File, created time.Time) []ocispec.Descriptor {
	t.Helper()
	var out []ocispec.Descriptor
	for _, f := range files {
		b, err := os.ReadFile(f.OSPath)
		if err != nil {
			t.Fatal(err)
		}
		l, err := f.Layer(digest.FromBytes(b), created)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	return out
}

func TestNewArtifactIsDeterministicAndValid(t *testing.T) {
	tree := map[string]string{"model.safetensors": "weights", "config.json": "{}", "README.md": "hi"}
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	meta := Metadata{Name: "tiny", Version: "1", Licenses: []string{"Apache-2.0"}}

	var digests []digest.Digest
	for i := 0; i < 2; i++ {
		dir := writeTree(t, tree) // a different directory, and different mtimes, each time
		if i == 1 {
			old := time.Now().Add(-48 * time.Hour)
			_ = os.Chtimes(filepath.Join(dir, "README.md"), old, old)
		}
		files, err := Scan(dir)
		if err != nil {
			t.Fatal(err)
		}
		art, err := NewArtifact(meta, created, layersFor(t, files, created), nil)
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, art.ManifestDesc.Digest)

		if art.Manifest.ArtifactType != ArtifactType || art.ConfigDesc.MediaType != MediaTypeConfig {
			t.Fatalf("artifactType %q config %q", art.Manifest.ArtifactType, art.ConfigDesc.MediaType)
		}
		cfg, err := ParseConfig(art.ConfigJSON)
		if err != nil {
			t.Fatalf("config does not parse back: %v", err)
		}
		if len(cfg.ModelFS.DiffIDs) != 3 || cfg.ModelFS.DiffIDs[0] != art.Manifest.Layers[0].Digest {
			t.Fatalf("diffIds %v do not follow the layers", cfg.ModelFS.DiffIDs)
		}
		if cfg.Descriptor.CreatedAt == nil || !cfg.Descriptor.CreatedAt.Equal(created) {
			t.Fatalf("createdAt %v", cfg.Descriptor.CreatedAt)
		}
		if got := art.Manifest.Annotations[AnnotationCreated]; got != "2026-01-02T03:04:05Z" {
			t.Fatalf("created annotation %q", got)
		}
		l := art.Manifest.Layers[0]
		if l.Annotations[AnnotationFilepath] != "README.md" || l.Annotations[AnnotationTitle] != "README.md" {
			t.Fatalf("layer annotations %v", l.Annotations)
		}
		var md FileMetadata
		if err := json.Unmarshal([]byte(l.Annotations[AnnotationFileMetadata]), &md); err != nil {
			t.Fatal(err)
		}
		if md.Mode != 0o644 || md.Size != 2 || !md.ModTime.Equal(created) {
			t.Fatalf("file metadata %+v", md)
		}
	}
	if digests[0] != digests[1] {
		t.Fatalf("same tree packed to %s and %s", digests[0], digests[1])
	}
	// A changed byte must change the digest.
	dir := writeTree(t, map[string]string{"model.safetensors": "weightS", "config.json": "{}", "README.md": "hi"})
	files, _ := Scan(dir)
	art, err := NewArtifact(meta, created, layersFor(t, files, created), nil)
	if err != nil {
		t.Fatal(err)
	}
	if art.ManifestDesc.Digest == digests[0] {
		t.Fatal("a changed file kept the manifest digest")
	}
}

func TestNewArtifactWithoutTimeHasNoTimestamps(t *testing.T) {
	dir := writeTree(t, map[string]string{"a.gguf": "x"})
	files, _ := Scan(dir)
	art, err := NewArtifact(Metadata{}, time.Time{}, layersFor(t, files, time.Time{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(art.ConfigJSON), "createdAt") || art.Manifest.Annotations != nil {
		t.Fatalf("timestamps present: %s %v", art.ConfigJSON, art.Manifest.Annotations)
	}
}

func TestNewArtifactRefusesNoLayers(t *testing.T) {
	if _, err := NewArtifact(Metadata{}, time.Time{}, nil, nil); err == nil {
		t.Fatal("want an error: registries such as ECR refuse a manifest without layers")
	}
}

func TestParseConfigStrict(t *testing.T) {
	good := `{"descriptor":{"name":"x"},"config":{},"modelfs":{"type":"layers","diffIds":["sha256:` + strings.Repeat("a", 64) + `"]}}`
	if _, err := ParseConfig([]byte(good)); err != nil {
		t.Fatalf("good config: %v", err)
	}
	bad := map[string]string{
		"unknown top-level key": strings.Replace(good, `"config":{}`, `"config":{},"extra":1`, 1),
		"unknown nested key":    strings.Replace(good, `"config":{}`, `"config":{"gpu":"h100"}`, 1),
		"wrong modelfs type":    strings.Replace(good, `"layers"`, `"tar"`, 1),
		"no diffIds":            `{"descriptor":{},"config":{},"modelfs":{"type":"layers","diffIds":[]}}`,
		"bad diffId":            strings.Replace(good, "sha256:", "sha256:zz", 1),
		"not JSON":              `{`,
	}
	for name, b := range bad {
		if _, err := ParseConfig([]byte(b)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParseCreated(t *testing.T) {
	for in, want := range map[string]time.Time{
		"":                     {},
		"0":                    time.Unix(0, 0).UTC(),
		"1700000000":           time.Unix(1700000000, 0).UTC(),
		"2026-01-02T03:04:05Z": time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	} {
		got, err := ParseCreated(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseCreated(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"yesterday", "12abc", "1.5"} {
		if _, err := ParseCreated(in); err == nil {
			t.Errorf("ParseCreated(%q): no error", in)
		}
	}
}

func TestLoadMetadata(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "model.yaml")
	os.WriteFile(p, []byte("name: llama\nversion: \"3\"\nparamSize: 8b\nlicenses: [llama3]\n"), 0o644)
	m, err := LoadMetadata(p)
	if err != nil || m.Name != "llama" || m.Version != "3" || m.ParamSize != "8b" || len(m.Licenses) != 1 {
		t.Fatalf("LoadMetadata = %+v, %v", m, err)
	}
	os.WriteFile(p, []byte("name: llama\nparamSzie: 8b\n"), 0o644)
	if _, err := LoadMetadata(p); err == nil {
		t.Fatal("a misspelt key was accepted")
	}
}

// TestScanExcludes: version-control data, caches and OS litter stay out by
// default; .modelattestignore files (at the root and below) and WithExclude
// add gitignore patterns, and later patterns win.
func TestScanExcludes(t *testing.T) {
	tree := map[string]string{
		"model.safetensors": "w", "config.json": "{}",
		".git/HEAD": "ref", ".gitattributes": "*.bin lfs", ".DS_Store": "x",
		"__pycache__/m.cpython-312.pyc": "x", "sub/__pycache__/n.pyc": "x",
		".ipynb_checkpoints/a.ipynb": "x", ".cache/huggingface/download/x.lock": "x",
		"model.sig": "{}", "eval/run1.log": "l", "eval/keep.log": "k", "eval/scores.json": "{}",
		"sub/big.ckpt": "c", "sub/" + IgnoreFile: "*.ckpt\n",
		IgnoreFile: "# logs of the runs\n*.log\n!eval/keep.log\n",
	}
	tests := []struct {
		name string
		opts []ScanOption
		want string
	}{
		{"defaults and ignore files", nil, "config.json eval/keep.log eval/scores.json model.safetensors"},
		{"a file taken back from a folder's contents", []ScanOption{WithExclude("eval/*"), WithExclude("!eval/scores.json")},
			"config.json eval/scores.json model.safetensors"},
		{"--exclude wins over the ignore file", []ScanOption{WithExclude("eval/"), WithExclude("!sub/big.ckpt")},
			"config.json model.safetensors sub/big.ckpt"},
		{"without defaults", []ScanOption{WithoutDefaultExcludes()},
			".DS_Store .cache/huggingface/download/x.lock .git/HEAD .gitattributes .ipynb_checkpoints/a.ipynb .modelattestignore " +
				"__pycache__/m.cpython-312.pyc config.json eval/keep.log eval/scores.json model.safetensors model.sig " +
				"sub/.modelattestignore sub/__pycache__/n.pyc"},
	}
	dir := writeTree(t, tree)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files, err := Scan(dir, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range files {
				got = append(got, f.Path)
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("Scan =\n%s\nwant\n%s", strings.Join(got, " "), tt.want)
			}
		})
	}
}

// TestScanDereference: a Hugging Face cache snapshot is links into blobs/.
// Without WithDereference the error names the flag; with it the files are
// packed under the links' names with the targets' bytes and modes.
func TestScanDereference(t *testing.T) {
	cache := writeTree(t, map[string]string{"blobs/aaa": `{"model_type":"llama"}`, "blobs/bbb": "weights"})
	snap := filepath.Join(cache, "snapshots", "0123abc")
	os.MkdirAll(snap, 0o755)
	os.Symlink("../../blobs/aaa", filepath.Join(snap, "config.json"))
	os.Symlink("../../blobs/bbb", filepath.Join(snap, "model.safetensors"))

	_, err := Scan(snap)
	if !errors.Is(err, ErrSymlink) || !strings.Contains(err.Error(), "--dereference") || !strings.Contains(err.Error(), `"config.json"`) {
		t.Fatalf("err = %v, want ErrSymlink naming the file and --dereference", err)
	}
	files, err := Scan(snap, WithDereference())
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[1].Path != "model.safetensors" || files[1].Size != int64(len("weights")) || files[1].Kind != KindWeight {
		t.Fatalf("files = %+v", files)
	}
	// The folder given may itself be a link (a "latest" link to a snapshot).
	latest := filepath.Join(cache, "latest")
	os.Symlink(filepath.Join("snapshots", "0123abc"), latest)
	if files, err := Scan(latest, WithDereference()); err != nil || len(files) != 2 {
		t.Fatalf("scan through a linked folder: %v, %d files", err, len(files))
	}
	os.Symlink("../../blobs", filepath.Join(snap, "dirlink"))
	if _, err := Scan(snap, WithDereference()); err == nil || !strings.Contains(err.Error(), "links to a folder") {
		t.Fatalf("a link to a folder: err = %v", err)
	}
}
