package oras

import (
	"bytes"
	"context"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content/memory"
)

// FuzzFetchManifest: bytes served as a manifest (or a referrers index the
// registry presents as one) are either a checked OCI image manifest or
// refused; never a panic, never unchecked bytes.
func FuzzFetchManifest(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}`))
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`))
	f.Add([]byte(`{"schemaVersion":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		store := memory.New()
		desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(b), Size: int64(len(b))}
		if err := store.Push(context.Background(), desc, bytes.NewReader(b)); err != nil {
			return
		}
		m, raw, err := FetchManifest(context.Background(), store, desc)
		if err != nil {
			return
		}
		if !bytes.Equal(raw, b) || m.SchemaVersion != 2 || (m.MediaType != "" && m.MediaType != ocispec.MediaTypeImageManifest) {
			t.Fatalf("accepted %s", b)
		}
	})
}
