package oras_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
)

// TestPlantedStagingLinks: a staging folder that passes the ownership
// rules (ours, no one else can write it) may still hold what we did not
// put there: a repository checked out or an archive unpacked beside the
// output directory brings the user's own files, symlinks included, under a
// predictable name (the digest of a public model). The pull follows none
// of them: the file a link points at, beside the output directory, is
// never written, and the model lands whole. Forged resume records and
// partial files are TestWANPullRefusals's.
func TestPlantedStagingLinks(t *testing.T) {
	ctx := context.Background()
	tgt := layout(t)
	model := regtest.ModelDir(t, 64<<10)
	desc := push(t, tgt, model)
	b, err := os.ReadFile(filepath.Join(model, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	weights := digest.FromBytes(b).Encoded()
	const precious = "the user's own file, beside the output directory\n"

	for _, tc := range []struct {
		name string
		// links are staging-folder names made symlinks to the victim.
		links []string
		// files are staging-folder names made regular files of ours.
		files []string
	}{
		// The range record was opened (O_TRUNC, then appended to) through
		// the link whenever no partial file was there.
		{name: "range record, no partial file", links: []string{weights + ".ranges"}},
		{name: "range record beside a partial file of ours", links: []string{weights + ".ranges"}, files: []string{weights + ".partial"}},
		{name: "partial file", links: []string{weights + ".partial"}, files: []string{weights + ".ranges"}},
		{name: "partial file and range record", links: []string{weights + ".partial", weights + ".ranges"}},
		{name: "verified blob", links: []string{weights}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			out := filepath.Join(parent, "out")
			victim := filepath.Join(parent, "train.py")
			if err := os.WriteFile(victim, []byte(precious), 0o644); err != nil {
				t.Fatal(err)
			}
			staging := filepath.Join(parent, ".out.modelattest-partial")
			if err := os.Mkdir(staging, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, l := range tc.links {
				if err := os.Symlink("../train.py", filepath.Join(staging, l)); err != nil {
					t.Fatal(err)
				}
			}
			for _, f := range tc.files {
				if err := os.WriteFile(filepath.Join(staging, f), []byte("0 10\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := oras.Pull(ctx, tgt, desc, out, oras.PullOptions{}); err != nil {
				t.Fatal(err)
			}
			regtest.SameTree(t, model, out)
			if got, err := os.ReadFile(victim); err != nil || string(got) != precious {
				t.Fatalf("the file a planted link points at was written: %q (%v)", got, err)
			}
		})
	}
}
