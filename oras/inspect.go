package oras

import (
	"context"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"

	"github.com/modelattest/modelattest/modelspec"
)

// Inspection is what a model manifest says about the model, read without
// fetching any of its files. It is data: the CLI prints it as text or JSON.
type Inspection struct {
	// Descriptor is the manifest's descriptor (its digest resolved once).
	Descriptor ocispec.Descriptor `json:"descriptor"`
	// Manifest is the manifest, digest-checked.
	Manifest ocispec.Manifest `json:"manifest"`
	// Config is the ModelPack config, digest-checked and checked against
	// the layers; nil for another artifact type's config.
	Config *modelspec.Config `json:"config,omitempty"`
	// Files are the files a pull would write, in manifest order.
	Files []InspectedFile `json:"files"`
}

// InspectedFile is one file of a model as its manifest describes it.
type InspectedFile struct {
	Path string `json:"path"`
	Kind string `json:"kind"`
	// Format is "raw", or the archive format of a tar layer.
	Format string `json:"format"`
	Size   int64  `json:"size"`
	// Mode is the permission the file gets on disk, in octal ("0644").
	Mode      string `json:"mode"`
	Digest    string `json:"digest"`
	MediaType string `json:"mediaType"`
}

// Inspect reads the model manifest desc (a digest the caller resolved
// once), its ModelPack config when it has one, and the files a pull would
// write, refusing a manifest a pull would refuse.
func Inspect(ctx context.Context, src content.Fetcher, desc ocispec.Descriptor) (*Inspection, error) {
	m, _, err := FetchManifest(ctx, src, desc)
	if err != nil {
		return nil, err
	}
	in := &Inspection{Descriptor: desc, Manifest: *m, Files: []InspectedFile{}}
	if m.Config.MediaType == modelspec.MediaTypeConfig {
		if in.Config, err = FetchConfig(ctx, src, m.Config); err != nil {
			return nil, err
		}
	}
	entries, err := modelspec.Plan(*m)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	for _, e := range entries {
		in.Files = append(in.Files, InspectedFile{Path: e.Path, Kind: string(e.Kind), Format: e.Format(),
			Size: e.Layer.Size, Mode: fmt.Sprintf("%04o", uint32(e.Mode.Perm())), Digest: e.Layer.Digest.String(), MediaType: e.Layer.MediaType})
	}
	return in, nil
}
