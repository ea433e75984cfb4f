package modelspec_test

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/modelattest/modelattest/modelspec"
)

// Pack a model directory into a ModelPack manifest: scan the files, make a
// raw layer of each, and assemble config and manifest. The same directory
// always gives the same digest.
func ExampleNewArtifact() {
	dir, _ := os.MkdirTemp("", "model")
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "model.safetensors"), []byte("weights"), 0o644)
	os.WriteFile(filepath.Join(dir, "config.json"), []byte("{}"), 0o644)

	files, _ := modelspec.Scan(dir)
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var layers []ocispec.Descriptor
	for _, f := range files {
		b, _ := os.ReadFile(f.OSPath)
		l, _ := f.Layer(digest.FromBytes(b), created)
		layers = append(layers, l)
	}
	art, _ := modelspec.NewArtifact(modelspec.Metadata{Name: "tiny"}, created, layers, nil)
	fmt.Println(art.Manifest.ArtifactType)
	for _, l := range art.Manifest.Layers {
		fmt.Println(l.MediaType, l.Annotations[modelspec.AnnotationFilepath])
	}
	// Output:
	// application/vnd.cncf.model.manifest.v1+json
	// application/vnd.cncf.model.weight.config.v1.raw config.json
	// application/vnd.cncf.model.weight.v1.raw model.safetensors
}

// Plan refuses a manifest that would write outside the output directory,
// before a byte is fetched.
func ExamplePlan() {
	m := ocispec.Manifest{Layers: []ocispec.Descriptor{{
		MediaType:   modelspec.KindWeight.MediaType(),
		Digest:      digest.FromString("x"),
		Annotations: map[string]string{modelspec.AnnotationFilepath: "../../home/user/.bashrc"},
	}}}
	_, err := modelspec.Plan(m)
	fmt.Println(err)
	// Output:
	// layer 0 (sha256:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881): unsafe path "../../home/user/.bashrc": escapes the directory with ..
}
