package oras

import (
	"context"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"

	"github.com/modelattest/modelattest/encryption"
	"github.com/modelattest/modelattest/modelspec"
)

// DecryptionKeys reads the model manifest desc (a digest resolved once) and
// unwraps the key of each of its encrypted layers with the recipient's
// private key privPEM: the keys PullOptions.Decrypt takes. A model with no
// encrypted layer gives no keys and no error.
func DecryptionKeys(ctx context.Context, src content.Fetcher, desc ocispec.Descriptor, privPEM []byte) (encryption.Keys, error) {
	m, _, err := FetchManifest(ctx, src, desc)
	if err != nil {
		return nil, err
	}
	keys, err := encryption.UnwrapKeys(ctx, m, privPEM)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	return keys, nil
}

// checkEncrypted refuses, before anything is fetched, a pull that could
// not decrypt what it would write: an encrypted layer with no key (or no
// keys at all), an encrypted archive layer (only raw files are decrypted),
// and a key whose plaintext digest is not the one the model config's
// diffIds name for that layer. The config is signed with the manifest, and
// every decrypted file is checked against its key's digest, so a file
// lands only if it is the plaintext the config (and a model-signing
// statement made from it) names.
func checkEncrypted(m *ocispec.Manifest, cfg *modelspec.Config, entries []modelspec.Entry, keys encryption.Keys) error {
	index := map[digest.Digest]int{}
	for i, l := range m.Layers {
		index[l.Digest] = i
	}
	for _, e := range entries {
		if !e.Encrypted() {
			continue
		}
		if keys == nil {
			return fmt.Errorf("layer %q (%s) is encrypted: %w: pulling it needs the recipient's private key (--decryption-key) or keys released by a key broker; nothing was written",
				e.Path, e.Layer.Digest, encryption.ErrNoKey)
		}
		key, ok := keys[e.Layer.Digest]
		if !ok {
			return fmt.Errorf("layer %q (%s) is encrypted: %w among the keys given; nothing was written", e.Path, e.Layer.Digest, encryption.ErrNoKey)
		}
		if e.Archive() {
			return fmt.Errorf("layer %q (%s): %w: an encrypted %s archive (only raw file layers are decrypted)", e.Path, e.Layer.Digest, encryption.ErrUnsupported, e.Format())
		}
		pd, err := key.PlaintextDigest()
		if err != nil {
			return fmt.Errorf("layer %q (%s): %w", e.Path, e.Layer.Digest, err)
		}
		if pd.Algorithm() != digest.SHA256 && pd.Algorithm() != digest.SHA512 {
			return fmt.Errorf("layer %q (%s): plaintext digest algorithm %q is not supported", e.Path, e.Layer.Digest, pd.Algorithm())
		}
		if cfg != nil {
			if want := cfg.ModelFS.DiffIDs[index[e.Layer.Digest]]; pd != want {
				return fmt.Errorf("layer %q (%s): %w: its key decrypts to %s but the config's diffIds name %s", e.Path, e.Layer.Digest, ErrIntegrity, pd, want)
			}
		}
	}
	return nil
}

// fetchEncrypted brings the plaintext of an encrypted raw layer into the
// staging folder and returns the plaintext's descriptor, under which
// commit places it. The ciphertext is fetched and checked against its
// digest as any blob (fetchRaw), then decrypted into the staging folder
// (0700) and kept only once ocicrypt's HMAC and the plaintext digest both
// hold. A plaintext already in the output directory, or verified into
// the staging folder by an interrupted pull, is not fetched again.
func (st *staging) fetchEncrypted(ctx context.Context, src content.Fetcher, e modelspec.Entry, key encryption.LayerKey, present bool, p Progress) (ocispec.Descriptor, FileStatus, *TransferStats, error) {
	pd, err := key.PlaintextDigest()
	if err != nil {
		return ocispec.Descriptor{}, "", nil, err
	}
	plain := ocispec.Descriptor{MediaType: encryption.PlainMediaType(e.Layer.MediaType), Digest: pd, Size: e.Layer.Size, Annotations: e.Layer.Annotations}
	if present && st.hashIn(st.out+"/"+e.Path, pd, plain.Size) {
		t := track(p, e.Path, plain.Size)
		t.Add(plain.Size)
		t.Done(string(FilePresent), nil)
		return plain, FilePresent, nil, nil
	}
	if st.hashIn(st.blob(pd), pd, plain.Size) {
		t := track(p, e.Path, plain.Size)
		t.Add(plain.Size)
		t.Done(string(FileResumed), nil)
		return plain, FileResumed, nil, nil
	}
	// The output directory holds plaintext: a file there is never taken
	// for the ciphertext.
	status, stats, err := st.fetchRaw(ctx, src, e, false, p)
	if err != nil {
		return ocispec.Descriptor{}, "", nil, err
	}
	part := st.blob(pd) + ".part-" + randSuffix()
	pt, err := encryption.DecryptFile(ctx, st.root, st.blob(e.Layer.Digest), part, e.Layer, key)
	if err != nil {
		if errors.Is(err, encryption.ErrIntegrity) {
			return ocispec.Descriptor{}, "", nil, fmt.Errorf("layer %q (%s): %w: %w", e.Path, e.Layer.Digest, ErrIntegrity, err)
		}
		return ocispec.Descriptor{}, "", nil, fmt.Errorf("layer %q (%s): decrypt: %w", e.Path, e.Layer.Digest, err)
	}
	if pt.Size != plain.Size {
		_ = st.root.Remove(part)
		return ocispec.Descriptor{}, "", nil, fmt.Errorf("layer %q (%s): %w: %d plaintext bytes, want %d", e.Path, e.Layer.Digest, ErrIntegrity, pt.Size, plain.Size)
	}
	if err := st.root.Rename(part, st.blob(pd)); err != nil {
		_ = st.root.Remove(part)
		return ocispec.Descriptor{}, "", nil, err
	}
	return plain, status, stats, nil
}
