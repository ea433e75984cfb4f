package regtest

import (
	"crypto/rand"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// ModelDir writes a small model directory: weights of wsize random bytes,
// a config, a tokenizer, a README, an executable script in a sub-folder,
// and an empty file.
func ModelDir(t testing.TB, wsize int) string {
	t.Helper()
	dir := t.TempDir()
	w := make([]byte, wsize)
	if _, err := rand.Read(w); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"model.safetensors":  w,
		"config.json":        []byte(`{"architectures":["TinyForCausalLM"],"hidden_size":8}`),
		"tokenizer.json":     []byte(`{"version":"1.0"}`),
		"README.md":          []byte("# tiny\nA model for tests.\n"),
		"scripts/convert.py": []byte("print('convert')\n"),
		"empty.txt":          nil,
	}
	for p, b := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "scripts/convert.py"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// FileState is what a round trip must preserve of a file.
type FileState struct {
	Path string
	Mode fs.FileMode
	Data string
}

// Tree reads every regular file below dir, in path order, and fails on
// anything else (a symlink or device in a pulled tree is a bug).
func Tree(t testing.TB, dir string) []FileState {
	t.Helper()
	var out []FileState
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			t.Errorf("%s: not a regular file (%s)", p, d.Type())
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fi, _ := d.Info()
		out = append(out, FileState{Path: filepath.ToSlash(rel), Mode: fi.Mode().Perm(), Data: string(b)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// SameTree fails the test unless dirs a and b hold the same files with the
// same bytes and permission bits.
func SameTree(t testing.TB, a, b string) {
	t.Helper()
	compareTrees(t, a, b, true)
}

// SameContent fails the test unless dirs a and b hold the same files with
// the same bytes (modes are not compared: other tools do not keep them).
func SameContent(t testing.TB, a, b string) {
	t.Helper()
	compareTrees(t, a, b, false)
}

func compareTrees(t testing.TB, a, b string, modes bool) {
	t.Helper()
	ta, tb := Tree(t, a), Tree(t, b)
	if len(ta) != len(tb) {
		t.Fatalf("%s has %d files, %s has %d", a, len(ta), b, len(tb))
	}
	for i := range ta {
		if ta[i].Path != tb[i].Path || ta[i].Data != tb[i].Data || (modes && ta[i].Mode != tb[i].Mode) {
			t.Fatalf("file %d differs: %s %v (%d bytes) vs %s %v (%d bytes)", i,
				ta[i].Path, ta[i].Mode, len(ta[i].Data), tb[i].Path, tb[i].Mode, len(tb[i].Data))
		}
	}
}

// Entries lists the names in dir (nil when it does not exist).
func Entries(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}
