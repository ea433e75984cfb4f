package oras

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	orasgo "oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"

	"github.com/modelattest/modelattest/modelspec"
)

// DefaultConcurrency is how many blobs move at once when an option says 0.
const DefaultConcurrency = 8

// PushOptions are the optional settings of Push. The zero value packs with
// the well-known kinds, no metadata and no time stamps (reproducible), eight
// uploads at once, and no progress.
type PushOptions struct {
	// Metadata fills the model config's descriptor and config sections.
	Metadata modelspec.Metadata
	// Created is the creation time; zero omits every time stamp.
	Created time.Time
	// Scan options: kind overrides and exclusions.
	Scan []modelspec.ScanOption
	// Annotations are added to the manifest.
	Annotations map[string]string
	// NoDetectMetadata leaves the config to Metadata alone. By default the
	// empty fields of Metadata are filled from the folder's own files
	// (modelspec.DetectMetadata: Hugging Face config.json, safetensors and
	// GGUF headers, MLmodel), and the manifest says where each came from.
	NoDetectMetadata bool
	// Detected, when set, is called with what was read from the folder,
	// before any upload (warnings included).
	Detected func(modelspec.Detected)
	// Concurrency is the number of parallel uploads (0: DefaultConcurrency).
	Concurrency int
	// Progress reports each upload.
	Progress Progress
	// DigestCacheDir, when set, is a folder where the digest of each pushed
	// file is remembered by its inode, size and times, so a later push of
	// the unchanged file skips a blob the registry already has without
	// reading it. The folder also records (locations.json, bounded) the
	// registry repositories where each blob was pushed or pulled
	// (PullOptions.DigestCacheDir): a blob the destination lacks is then
	// mounted from another repository of the same registry instead of being
	// sent. Empty: no cache, no mounts.
	DigestCacheDir string
}

// Push packs the model directory dir and stores it in dst, tagging it with
// ref when ref is not empty. Each file is read once and never whole into
// memory. It returns the manifest descriptor; PushModel also says what
// happened to each blob.
func Push(ctx context.Context, dst orasgo.Target, ref, dir string, opts PushOptions) (ocispec.Descriptor, error) {
	res, err := PushModel(ctx, dst, ref, dir, opts)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return res.Manifest, nil
}

// PushModel is Push, returning what happened to each file's blob: skipped
// because the registry has it, mounted from another repository of the same
// registry (see PushOptions.DigestCacheDir), or uploaded. Different blobs
// move concurrently (PushOptions.Concurrency); one blob's upload is a
// sequence of requests on one session, as the distribution spec has it.
func PushModel(ctx context.Context, dst orasgo.Target, ref, dir string, opts PushOptions) (*PushResult, error) {
	start := time.Now()
	files, meta, annotations, err := scanModel(dir, opts)
	if err != nil {
		return nil, err
	}
	layers := make([]ocispec.Descriptor, len(files))
	res := &PushResult{Blobs: make([]PushedBlob, len(files))}
	up := newUploader(dst, opts.DigestCacheDir)
	var total int64
	for _, f := range files {
		total += f.Size
	}
	plan(opts.Progress, total)
	// What was learnt is kept even when another file fails.
	defer up.where.save()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency(opts.Concurrency))
	for i, f := range files {
		g.Go(func() error {
			t := track(opts.Progress, f.Path, f.Size)
			sent := &countingWriter{t: t}
			b, err := up.upload(gctx, f.OSPath, f.Size, sent)
			t.Done(string(b.Status), err)
			if err != nil {
				return fmt.Errorf("layer %q: %w", f.Path, err)
			}
			b.Path, b.Sent = f.Path, sent.n.Load()
			res.Blobs[i] = b
			layers[i], err = f.Layer(b.Digest, opts.Created)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	art, err := modelspec.NewArtifact(meta, opts.Created, layers, annotations)
	if err != nil {
		return nil, err
	}
	if err := PushArtifact(ctx, dst, ref, art); err != nil {
		return nil, err
	}
	res.finish(art.ManifestDesc, start)
	return res, nil
}

// BlobStatus says how a blob reached the registry.
type BlobStatus string

const (
	// BlobUploaded: the blob's bytes were sent.
	BlobUploaded BlobStatus = "uploaded"
	// BlobSkipped: the store had the blob already (it answered HEAD).
	BlobSkipped BlobStatus = "skipped"
	// BlobMounted: the registry mounted the blob from another repository
	// of its own (POST ?mount=&from= answered 201); nothing was sent.
	BlobMounted BlobStatus = "mounted"
)

// PushedBlob is what a push did with one file's blob.
type PushedBlob struct {
	Path   string        `json:"path"`
	Digest digest.Digest `json:"digest"`
	Size   int64         `json:"size"`
	Status BlobStatus    `json:"status"`
	// MountedFrom is the repository a mounted blob came from.
	MountedFrom string `json:"mountedFrom,omitempty"`
	// Sent is how many of the blob's bytes went out in request bodies
	// (an attempt that failed and was retried is not counted).
	Sent int64 `json:"sentBytes"`
}

// PushResult says what a push did. Config and manifest, a few KiB, are
// not among Blobs.
type PushResult struct {
	Manifest ocispec.Descriptor `json:"manifest"`
	// Blobs are the model's files in manifest order.
	Blobs []PushedBlob `json:"blobs"`
	// Bytes is the size of all the files; Sent what was sent of it.
	Bytes int64 `json:"bytes"`
	Sent  int64 `json:"sentBytes"`
	// Seconds is the push's wall time.
	Seconds float64 `json:"seconds"`
}

// finish records the stored manifest and the totals of a push that
// started at start.
func (r *PushResult) finish(manifest ocispec.Descriptor, start time.Time) {
	r.Manifest = manifest
	for _, b := range r.Blobs {
		r.Bytes += b.Size
		r.Sent += b.Sent
	}
	r.Seconds = time.Since(start).Seconds()
}

// scanModel lists the files of the model directory dir and the metadata
// and manifest annotations its config gets.
func scanModel(dir string, opts PushOptions) ([]modelspec.File, modelspec.Metadata, map[string]string, error) {
	files, err := modelspec.Scan(dir, opts.Scan...)
	if err != nil {
		return nil, modelspec.Metadata{}, nil, err
	}
	meta, annotations := opts.Metadata, opts.Annotations
	if !opts.NoDetectMetadata {
		det := modelspec.DetectMetadata(files)
		if opts.Detected != nil {
			opts.Detected(det)
		}
		var found map[string]string
		meta, found = det.Apply(meta)
		annotations = make(map[string]string, len(found)+len(opts.Annotations))
		for k, v := range found {
			annotations[k] = v
		}
		for k, v := range opts.Annotations {
			annotations[k] = v // the caller's annotations win
		}
	}
	return files, meta, annotations, nil
}

// PushArtifact stores a packed artifact's config and manifest (its layers
// must be there already) and tags it with ref when ref is not empty.
func PushArtifact(ctx context.Context, dst orasgo.Target, ref string, art *modelspec.Artifact) error {
	if err := PushBytes(ctx, dst, art.ConfigDesc, art.ConfigJSON); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := PushBytes(ctx, dst, art.ManifestDesc, art.ManifestJSON); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	if ref != "" {
		if err := dst.Tag(ctx, art.ManifestDesc, ref); err != nil {
			return fmt.Errorf("tag %q: %w", ref, err)
		}
	}
	return nil
}

// PushBytes stores b as desc in dst unless dst has it already.
func PushBytes(ctx context.Context, dst content.Storage, desc ocispec.Descriptor, b []byte) error {
	if ok, err := dst.Exists(ctx, desc); err == nil && ok {
		return nil
	}
	err := dst.Push(ctx, desc, bytes.NewReader(b))
	if errors.Is(err, errdef.ErrAlreadyExists) {
		return nil
	}
	return err
}

func concurrency(n int) int {
	if n <= 0 {
		return DefaultConcurrency
	}
	return n
}
