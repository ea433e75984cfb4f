package oras_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
)

// TestPullOutputDirectory: entries that are not part of the model are
// refused with their names (typed), removed with Overwrite once the model
// is in place, kept with KeepExtra; a folder where a file goes is a typed
// local conflict, not an unsafe path.
func TestPullOutputDirectory(t *testing.T) {
	ctx := context.Background()
	tgt := layout(t)
	model := regtest.ModelDir(t, 100)
	desc := push(t, tgt, model)
	out := filepath.Join(t.TempDir(), "out")
	os.MkdirAll(filepath.Join(out, "scripts", "old"), 0o755)
	os.WriteFile(filepath.Join(out, "scripts", "old", "x.py"), nil, 0o644)
	os.WriteFile(filepath.Join(out, "notes.txt"), nil, 0o644)

	_, err := oras.Pull(ctx, tgt, desc, out, oras.PullOptions{})
	var xe *oras.ExtraFilesError
	if !errors.As(err, &xe) || strings.Join(xe.Names, ",") != "notes.txt,scripts/old/" {
		t.Fatalf("err = %v, want an ExtraFilesError naming notes.txt and scripts/old/", err)
	}
	if _, err := oras.Pull(ctx, tgt, desc, out, oras.PullOptions{KeepExtra: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, "notes.txt")); err != nil {
		t.Fatal("KeepExtra removed notes.txt")
	}
	res, err := oras.Pull(ctx, tgt, desc, out, oras.PullOptions{Overwrite: true})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Removed, ",") != "notes.txt,scripts/old/" {
		t.Errorf("removed %v", res.Removed)
	}
	regtest.SameTree(t, model, out)

	conflict := filepath.Join(t.TempDir(), "out")
	os.MkdirAll(filepath.Join(conflict, "config.json"), 0o755)
	_, err = oras.Pull(ctx, tgt, desc, conflict, oras.PullOptions{})
	var ce *oras.ConflictError
	if !errors.As(err, &ce) || ce.Path != "config.json" || ce.Found != "folder" {
		t.Fatalf("err = %v, want a ConflictError for config.json", err)
	}
	// With verified blobs kept from an earlier pull, the message names the
	// staging folder that holds them.
	staging := filepath.Join(filepath.Dir(conflict), ".out.modelattest-partial")
	os.Mkdir(staging, 0o700)
	readme, _ := os.ReadFile(filepath.Join(model, "README.md"))
	os.WriteFile(filepath.Join(staging, digest.FromBytes(readme).Encoded()), readme, 0o600)
	_, err = oras.Pull(ctx, tgt, desc, conflict, oras.PullOptions{})
	if !errors.As(err, &ce) || ce.Staging != staging || !strings.Contains(err.Error(), "1 verified blobs kept in "+staging) {
		t.Fatalf("err = %v (staging %q), want the conflict naming %s", err, ce.Staging, staging)
	}
}

// TestPullStagingNotOurs: a staging folder others can write is left alone
// and the pull stages afresh under a new name, with a warning.
func TestPullStagingNotOurs(t *testing.T) {
	ctx := context.Background()
	tgt := layout(t)
	model := regtest.ModelDir(t, 100)
	desc := push(t, tgt, model)
	out := filepath.Join(t.TempDir(), "out")
	staging := filepath.Join(filepath.Dir(out), ".out.modelattest-partial")
	os.Mkdir(staging, 0o700)
	os.Chmod(staging, 0o777)
	var warned []string
	res, err := oras.Pull(ctx, tgt, desc, out, oras.PullOptions{Warn: func(m string) { warned = append(warned, m) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "others can write it") || len(res.Warnings) != 1 {
		t.Fatalf("warnings %v / %v", warned, res.Warnings)
	}
	if _, err := os.Stat(staging); err != nil {
		t.Fatal("the foreign staging folder was removed")
	}
	regtest.SameTree(t, model, out)
}
