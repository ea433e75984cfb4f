package registry_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/registry"
)

// Start an OCI 1.1 registry (the CNCF distribution registry with a
// Referrers API) on a free local port, push a model to it and pull it
// back; the registry stops when its context ends.
func ExampleStart() {
	ctx, stop := context.WithCancel(context.Background())
	work, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(work)

	srv, err := registry.Start(ctx, registry.Config{Addr: "127.0.0.1:0", RootDir: filepath.Join(work, "registry")})
	if err != nil {
		panic(err)
	}
	model := filepath.Join(work, "model")
	os.MkdirAll(model, 0o755)
	os.WriteFile(filepath.Join(model, "model.gguf"), []byte("weights"), 0o644)

	target, err := oras.OpenRemote(ctx, srv.Addr()+"/models/tiny:v1", oras.RemoteOptions{PlainHTTP: true})
	if err != nil {
		panic(err)
	}
	if _, err := oras.Push(ctx, target, target.Reference, model, oras.PushOptions{}); err != nil {
		panic(err)
	}
	desc, _ := oras.Resolve(ctx, target, "v1")
	res, err := oras.Pull(ctx, target, desc, filepath.Join(work, "out"), oras.PullOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Files[0].Status, res.Files[0].Path)

	stop()
	fmt.Println("stopped:", srv.Wait())
	// Output:
	// downloaded model.gguf
	// stopped: <nil>
}
