package oras_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/modelattest/modelattest/oras"
)

// exampleModel packs a two-file model into a new OCI layout under work
// and returns the layout and the model's descriptor.
func exampleModel(ctx context.Context, work string) *oras.Target {
	model := filepath.Join(work, "model")
	os.MkdirAll(model, 0o755)
	os.WriteFile(filepath.Join(model, "model.safetensors"), []byte("weights"), 0o644)
	os.WriteFile(filepath.Join(model, "config.json"), []byte(`{"model_type":"llama"}`), 0o644)
	target, err := oras.OpenLayout(filepath.Join(work, "layout") + ":v1")
	if err != nil {
		panic(err)
	}
	if _, err := oras.Push(ctx, target, "v1", model, oras.PushOptions{}); err != nil {
		panic(err)
	}
	return target
}

// Pull a model by digest: resolve the tag once, then every file is hashed
// while it streams and checked before it lands. A second pull finds the
// files already in place and downloads nothing.
func ExamplePull() {
	ctx := context.Background()
	work, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(work)
	target := exampleModel(ctx, work)

	desc, err := oras.Resolve(ctx, target, target.Reference)
	if err != nil {
		panic(err)
	}
	out := filepath.Join(work, "out")
	for range 2 {
		res, err := oras.Pull(ctx, target, desc, out, oras.PullOptions{})
		if err != nil {
			panic(err)
		}
		for _, f := range res.Files {
			fmt.Println(f.Status, f.Path, f.Size)
		}
	}
	// Output:
	// downloaded config.json 22
	// downloaded model.safetensors 7
	// present config.json 22
	// present model.safetensors 7
}

// Copy a model with its referrers (signatures, attestations) from one
// store to another: here from one OCI layout to another, as for an
// air-gapped transfer; a registry is opened with oras.OpenRemote.
func ExampleCopy() {
	ctx := context.Background()
	work, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(work)
	src := exampleModel(ctx, work)

	dst, err := oras.OpenLayout(filepath.Join(work, "airgap"))
	if err != nil {
		panic(err)
	}
	desc, err := oras.Resolve(ctx, src, "v1")
	if err != nil {
		panic(err)
	}
	if err := oras.Copy(ctx, src, desc, dst, "v1", oras.CopyOptions{Referrers: true}); err != nil {
		panic(err)
	}
	copied, err := oras.Resolve(ctx, dst, "v1")
	if err != nil {
		panic(err)
	}
	fmt.Println(copied.Digest == desc.Digest)
	// Output:
	// true
}

// Inspect a model without fetching its files: the manifest, the ModelPack
// config and the files a pull would write.
func ExampleInspect() {
	ctx := context.Background()
	work, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(work)
	target := exampleModel(ctx, work)

	desc, _ := oras.Resolve(ctx, target, "v1")
	in, err := oras.Inspect(ctx, target, desc)
	if err != nil {
		panic(err)
	}
	fmt.Println(in.Manifest.ArtifactType)
	for _, f := range in.Files {
		fmt.Println(f.Path, f.Kind, f.Mode, f.Size)
	}
	// Output:
	// application/vnd.cncf.model.manifest.v1+json
	// config.json weight.config 0644 22
	// model.safetensors weight 0644 7
}
