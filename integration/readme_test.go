package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/modelattest/modelattest/internal/regtest"
)

// TestReadmeProgramBuilds: every Go block of the README is a whole program
// that compiles as written against this module. Each is built as a main
// package placed (through a go build overlay, so nothing is written into
// the tree) inside the module, so it uses the library as checked out.
func TestReadmeProgramBuilds(t *testing.T) {
	root := regtest.RepoRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllSubmatch(readme, -1)
	if len(blocks) == 0 {
		t.Fatal("the README has no Go block")
	}
	tmp := t.TempDir()
	for i, b := range blocks {
		src := filepath.Join(tmp, "main.go")
		if err := os.WriteFile(src, b[1], 0o644); err != nil {
			t.Fatal(err)
		}
		// A folder that does not exist in the tree, filled by the overlay.
		pkg := filepath.Join(root, "internal", "readme-block")
		overlay, _ := json.Marshal(map[string]map[string]string{"Replace": {filepath.Join(pkg, "main.go"): src}})
		ov := filepath.Join(tmp, "overlay.json")
		if err := os.WriteFile(ov, overlay, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("go", "build", "-overlay", ov, "-o", filepath.Join(tmp, "prog"), "./internal/readme-block")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("README Go block %d does not build: %v\n%s\n--- block ---\n%s", i+1, err, out, b[1])
		}
	}
}
