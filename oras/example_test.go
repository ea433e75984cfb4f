package oras_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/modelattest/modelattest/oras"
)

// Push a model directory to an OCI layout (a registry works the same way:
// oras.OpenRemote), resolve the tag once, and pull the files back by digest.
func ExamplePush() {
	ctx := context.Background()
	work, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(work)
	model := filepath.Join(work, "model")
	os.MkdirAll(model, 0o755)
	os.WriteFile(filepath.Join(model, "model.gguf"), []byte("weights"), 0o644)
	os.Chmod(filepath.Join(model, "model.gguf"), 0o644) // the mode is part of the artifact

	target, err := oras.OpenLayout(filepath.Join(work, "layout"))
	if err != nil {
		panic(err)
	}
	desc, err := oras.Push(ctx, target, "v1", model, oras.PushOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Println("pushed", desc.Digest)

	resolved, _ := oras.Resolve(ctx, target, "v1")
	res, err := oras.Pull(ctx, target, resolved, filepath.Join(work, "out"), oras.PullOptions{})
	if err != nil {
		panic(err)
	}
	for _, f := range res.Files {
		fmt.Println(f.Status, f.Path, f.Size)
	}
	// Output:
	// pushed sha256:caf12b5ee8cc9e8976cbf899cac1a0d6a0835edb148fd0a5c1751321e45124d7
	// downloaded model.gguf 7
}
