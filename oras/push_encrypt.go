package oras

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	orasgo "oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"

	"github.com/modelattest/modelattest/encryption"
	"github.com/modelattest/modelattest/modelspec"
)

// EncryptedPush says what PushEncrypted stored.
type EncryptedPush struct {
	// PushResult has the encrypted model's manifest descriptor, as stored
	// (and tagged): what sign and attest name; and its blobs, the
	// ciphertexts, every one uploaded (they are new on every push).
	PushResult
	// Plaintext is the same model unencrypted, never stored: its layers'
	// digests are the files' own, so a model-signing statement made from
	// it is what the decrypted files verify against
	// (referrers.AttestModelSigningPlaintext).
	Plaintext *modelspec.Artifact
}

// PushEncrypted packs the model directory dir as Push does, encrypts
// every file layer for recipients with ocicrypt's scheme (see package
// encryption: a fresh random key per layer, wrapped in one JWE to every
// recipient, the "+encrypted" media types), and stores the encrypted model
// in dst, tagged ref when ref is not empty. The config stays plain and its
// diffIds name the plaintext files, so a pull checks each decrypted file
// against it.
//
// Each file is read twice and never whole into memory: once to measure
// its ciphertext, whose digest the manifest needs first, and once to
// upload it (encryption.EncryptLayer says why no ciphertext is staged).
// Encrypted pushes are not reproducible: the keys are random, so the same
// folder pushed twice gives two manifests. The digest cache is not used:
// no ciphertext is ever already in the registry.
func PushEncrypted(ctx context.Context, dst orasgo.Target, ref, dir string, recipients []encryption.Recipient, opts PushOptions) (*EncryptedPush, error) {
	if len(recipients) == 0 {
		return nil, errors.New("push: encryption needs at least one recipient")
	}
	start := time.Now()
	files, meta, annotations, err := scanModel(dir, opts)
	if err != nil {
		return nil, err
	}
	plain := make([]ocispec.Descriptor, len(files))
	enc := make([]ocispec.Descriptor, len(files))
	res := &EncryptedPush{PushResult: PushResult{Blobs: make([]PushedBlob, len(files))}}
	var total int64
	for _, f := range files {
		total += f.Size
	}
	plan(opts.Progress, total) // the upload pass is what progress shows
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency(opts.Concurrency))
	for i, f := range files {
		g.Go(func() error {
			t := track(opts.Progress, f.Path, f.Size)
			l, sent, err := pushEncryptedFile(gctx, dst, f, opts, recipients, t)
			t.Done("uploaded", err)
			if err != nil {
				return fmt.Errorf("layer %q: %w", f.Path, err)
			}
			plain[i], enc[i] = l.Plaintext, l.Descriptor
			res.Blobs[i] = PushedBlob{Path: f.Path, Digest: l.Descriptor.Digest, Size: l.Descriptor.Size, Status: BlobUploaded, Sent: sent}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	art, err := modelspec.NewArtifact(meta, opts.Created, plain, annotations)
	if err != nil {
		return nil, err
	}
	encArt, err := art.WithLayers(enc)
	if err != nil {
		return nil, err
	}
	if err := PushArtifact(ctx, dst, ref, encArt); err != nil {
		return nil, err
	}
	res.Plaintext = art
	res.finish(encArt.ManifestDesc, start)
	return res, nil
}

// pushEncryptedFile encrypts the file f and uploads its ciphertext; sent
// counts the bytes of the attempt that succeeded.
func pushEncryptedFile(ctx context.Context, dst content.Storage, f modelspec.File, opts PushOptions, recipients []encryption.Recipient, t Tracker) (l *encryption.EncryptedLayer, sent int64, err error) {
	desc, err := f.Layer("", opts.Created) // media type and annotations; digest measured below
	if err != nil {
		return nil, 0, err
	}
	open := func() (io.ReadCloser, error) { return os.Open(f.OSPath) }
	if l, err = encryption.EncryptLayer(ctx, desc, open, recipients); err != nil {
		return nil, 0, err
	}
	if l.Plaintext.Size != f.Size {
		return nil, 0, fmt.Errorf("%s: size changed while packing (%d, then %d bytes)", f.OSPath, f.Size, l.Plaintext.Size)
	}
	for attempt := 0; attempt < 3; attempt++ {
		if sent, err = pushCiphertext(ctx, dst, l, t); err == nil || !retryable(err) || ctx.Err() != nil {
			break
		}
	}
	return l, sent, err
}

// pushCiphertext uploads the layer's ciphertext in one request, encrypted
// again on the way (EncryptedLayer.Open); the registry checks it against
// the digest measured by the first pass.
func pushCiphertext(ctx context.Context, dst content.Storage, l *encryption.EncryptedLayer, t Tracker) (int64, error) {
	rc, err := l.Open()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	cw := &countingWriter{t: t}
	if err := dst.Push(ctx, l.Descriptor, io.TeeReader(rc, cw)); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
		t.Add(-cw.n.Load()) // the next attempt counts again
		return 0, err
	}
	return cw.n.Load(), nil
}
