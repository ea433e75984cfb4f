package modelspec_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelattest/modelattest/modelspec"
)

// TestScanRefusesMoreFilesThanPullAccepts: a folder of more files than a
// manifest may have layers is refused by pack, naming the limit, rather
// than pushed as a model every pull refuses.
func TestScanRefusesMoreFilesThanPullAccepts(t *testing.T) {
	for _, n := range []int{modelspec.MaxLayers, modelspec.MaxLayers + 1} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			dir := t.TempDir()
			for i := range n {
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%05d.json", i)), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			files, err := modelspec.Scan(dir)
			if n <= modelspec.MaxLayers {
				if err != nil || len(files) != n {
					t.Fatalf("%d files: %d scanned, %v", n, len(files), err)
				}
				return
			}
			if !errors.Is(err, modelspec.ErrLimit) || !strings.Contains(err.Error(), "10001 files") {
				t.Fatalf("%d files: got %v, want ErrLimit naming the count", n, err)
			}
		})
	}
}
