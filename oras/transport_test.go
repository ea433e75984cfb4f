package oras_test

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
)

// TestWrongLengthIsAnIntegrityFailure: a registry that sends a blob or a
// manifest one byte longer or shorter than its descriptor (and says so in
// Content-Length) fails the pull with ErrIntegrity, found by counting and
// hashing the bytes, never by reading an error's text.
func TestWrongLengthIsAnIntegrityFailure(t *testing.T) {
	ctx := context.Background()
	proxy := regtest.NewProxy(t, regtest.Embedded(t, ""))
	tgt := openRemote(t, proxy.Host, "models/tiny", "")
	desc, err := oras.Push(ctx, tgt, "v1", regtest.ModelDir(t, 4096), oras.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := oras.FetchManifest(ctx, tgt, desc)
	if err != nil {
		t.Fatal(err)
	}
	weights := m.Layers[len(m.Layers)-3].Digest // model.safetensors
	for _, tc := range []struct {
		name, path string
		edit       func([]byte) []byte
	}{
		{"longer blob", "/blobs/" + weights.String(), func(b []byte) []byte { return append(b, 0) }},
		{"shorter blob", "/blobs/" + weights.String(), func(b []byte) []byte { return b[:len(b)-1] }},
		{"longer manifest", "/manifests/" + desc.Digest.String(), func(b []byte) []byte { return append(b, ' ') }},
		{"shorter manifest", "/manifests/" + desc.Digest.String(), func(b []byte) []byte { return b[:len(b)-1] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy.SetTamper(func(r *http.Request, b []byte) []byte {
				if strings.HasSuffix(r.URL.Path, tc.path) {
					return tc.edit(b)
				}
				return b
			})
			defer proxy.SetTamper(nil)
			_, err := oras.Pull(ctx, tgt, desc, filepath.Join(t.TempDir(), "out"), oras.PullOptions{})
			if !errors.Is(err, oras.ErrIntegrity) {
				t.Fatalf("err = %v, want ErrIntegrity", err)
			}
		})
	}
}
