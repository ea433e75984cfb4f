package referrers

import (
	"context"
	"errors"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	orasgo "oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"

	"github.com/modelattest/modelattest/encryption"
	"github.com/modelattest/modelattest/modelspec"
	"github.com/modelattest/modelattest/oras"
)

// ErrEncryptedLayers is wrapped by a model-signing operation refused
// because a layer is encrypted and only the manifest was given: an
// encrypted layer's digest is the ciphertext's, so the manifest alone does
// not say what the file is.
var ErrEncryptedLayers = errors.New("model signing: the model has encrypted layers")

// omsConfig reads the model config a model-signing check needs: the one
// of m when a layer of m is encrypted (its diffIds name the plaintext
// files), else nil.
func omsConfig(ctx context.Context, src content.Fetcher, m *ocispec.Manifest) (*modelspec.Config, error) {
	for _, l := range m.Layers {
		if encryption.IsEncrypted(l.MediaType) {
			if m.Config.MediaType != modelspec.MediaTypeConfig {
				return nil, fmt.Errorf("%w: config media type %q is not a ModelPack config, which would name the plaintext files", ErrEncryptedLayers, m.Config.MediaType)
			}
			return oras.FetchConfig(ctx, src, m.Config)
		}
	}
	return nil, nil
}

// AttestModelSigningPlaintext makes the OpenSSF model-signing statement of
// an encrypted model from its plaintext (the unencrypted artifact push
// built, oras.EncryptedPush.Plaintext: its layer digests are the files'),
// signs it and stores it as a referrer of subject, the encrypted model.
// The statement is first checked against subject as it is stored (each
// encrypted layer's file digest is the config's diffId for it), as verify
// will check it; a plaintext that is not that model's is refused. A pull
// that decrypts with the layer keys then lands exactly the signed files,
// and `model_signing verify` works on them.
func AttestModelSigningPlaintext(ctx context.Context, dst orasgo.Target, subject ocispec.Descriptor, plain ocispec.Manifest, s *Signer, name string, opts AttachOptions) (ocispec.Descriptor, error) {
	m, _, err := oras.FetchManifest(ctx, dst, subject)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	cfg, err := omsConfig(ctx, dst, m)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	stJSON, _, err := OMSStatement(plain, name)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	st, err := ParseStatement(stJSON)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if err := CheckOMSModel(st, *m, cfg); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("the plaintext is not the model %s: %w", subject.Digest, err)
	}
	return attachOMS(ctx, dst, subject, s, stJSON, opts)
}
