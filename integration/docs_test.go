package integration

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/modelattest/modelattest/internal/regtest"
)

var (
	// a repository file named in prose: `oras/target.go`, (docs/POLICY.md)
	citedFile = regexp.MustCompile("[`(]((?:[a-z_-]+/)+[A-Za-z0-9_.-]+\\.(?:go|md|json|yaml|sh|txt))[`)#]")
	// a Go test, benchmark, example or fuzz target: `TestX`, `TestX/sub`
	citedTest = regexp.MustCompile(`\b((?:Test|Benchmark|Example|Fuzz)[A-Z][A-Za-z0-9_]*)`)
)

// TestDocsCiteWhatExists: every repository file and every test, benchmark,
// example or fuzz target that README.md and docs/*.md cite exists, so a
// reader who follows a reference finds it.
func TestDocsCiteWhatExists(t *testing.T) {
	root := regtest.RepoRoot(t)
	funcs := map[string]bool{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && p != root || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range regexp.MustCompile(`(?m)^func ((?:Test|Benchmark|Example|Fuzz)\w*)\(`).FindAllStringSubmatch(string(b), -1) {
			funcs[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	docs, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	docs = append(docs, filepath.Join(root, "README.md"))
	for _, doc := range docs {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		name, _ := filepath.Rel(root, doc)
		for _, m := range citedFile.FindAllStringSubmatch(string(b), -1) {
			f := m[1]
			// Go and Markdown files are always citations; other paths only
			// when they lead into one of the repository's folders (an output
			// layout such as vsa/NNN.json is an example, not a citation).
			top, _, _ := strings.Cut(f, "/")
			if fi, err := os.Stat(filepath.Join(root, top)); (err != nil || !fi.IsDir()) && !strings.HasSuffix(f, ".go") && !strings.HasSuffix(f, ".md") {
				continue
			}
			candidates := []string{filepath.Join(root, f), filepath.Join(filepath.Dir(doc), f)}
			found := false
			for _, c := range candidates {
				if _, err := os.Stat(c); err == nil {
					found = true
				}
			}
			if !found {
				t.Errorf("%s cites %s, which does not exist", name, f)
			}
		}
		for _, m := range citedTest.FindAllStringSubmatch(string(b), -1) {
			if !funcs[m[1]] {
				t.Errorf("%s cites %s, which no _test.go file defines", name, m[1])
			}
		}
	}
}
