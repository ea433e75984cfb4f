package encryption

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"

	"github.com/containers/ocicrypt/blockcipher"
	"github.com/containers/ocicrypt/config"
	"github.com/containers/ocicrypt/keywrap/jwe"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// symmetricKeyBytes is the AES-256 key length.
const symmetricKeyBytes = 32

// Opener opens the plaintext of a layer from its first byte. Each call
// must give the same bytes (a file on disk).
type Opener func() (io.ReadCloser, error)

// EncryptedLayer is one layer encrypted for its recipients. Descriptor is
// known before any ciphertext is stored; Open streams that ciphertext.
type EncryptedLayer struct {
	// Descriptor is the encrypted layer as the manifest lists it: the
	// plaintext's media type with "+encrypted", the ciphertext's digest and
	// size, the plaintext's annotations plus ocicrypt's (wrapped keys and
	// public options).
	Descriptor ocispec.Descriptor
	// Plaintext is the layer it was made from, with the plaintext's digest
	// and size: what a model-signing statement or the model config names.
	Plaintext ocispec.Descriptor

	open    Opener
	private blockcipher.PrivateLayerBlockCipherOptions
	hmac    []byte
}

// EncryptLayer encrypts the layer plain (its media type and annotations;
// digest and size are measured here) for recipients, with a fresh random
// key: two encryptions of the same bytes differ, so an encrypted push is
// never reproducible.
//
// The ciphertext's digest must be known before the manifest that names it,
// and a registry wants the digest of a blob it is given in one request. So
// the plaintext is read twice and nothing is staged: this first pass
// encrypts it to measure the ciphertext (its digest, size and HMAC, and the
// plaintext's digest), and EncryptedLayer.Open encrypts it again with the
// same key and nonce, which gives the same bytes (AES-CTR is a stream
// cipher). A temporary ciphertext file would cost as much free disk as the
// model and one more write of it; a second read costs neither and, for a
// small file, comes from the page cache. Memory stays constant either way.
func EncryptLayer(ctx context.Context, plain ocispec.Descriptor, open Opener, recipients []Recipient) (*EncryptedLayer, error) {
	if len(recipients) == 0 {
		return nil, errors.New("encrypt: no recipient")
	}
	if IsEncrypted(plain.MediaType) {
		return nil, fmt.Errorf("encrypt: media type %q is already encrypted", plain.MediaType)
	}
	key := make([]byte, symmetricKeyBytes)
	nonce := make([]byte, 16) // one AES block: the CTR counter's start
	if _, err := io.ReadFull(rand.Reader, key); err != nil {
		return nil, fmt.Errorf("encrypt: random key: %w", err)
	}
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return nil, fmt.Errorf("encrypt: random nonce: %w", err)
	}
	l := &EncryptedLayer{open: open, private: blockcipher.PrivateLayerBlockCipherOptions{
		SymmetricKey:  key,
		CipherOptions: map[string][]byte{"nonce": nonce},
	}}

	// First pass: measure the plaintext and the ciphertext.
	rc, err := open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	plainDigester := digest.SHA256.Digester()
	enc, fin, err := l.encrypter(io.TeeReader(&ctxReader{ctx: ctx, r: rc}, plainDigester.Hash()))
	if err != nil {
		return nil, err
	}
	cipherDigester := digest.SHA256.Digester()
	n, err := io.Copy(cipherDigester.Hash(), enc)
	if err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	opts, err := fin()
	if err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	l.hmac = opts.Public.Hmac
	l.private.Digest = plainDigester.Digest()

	pub, err := json.Marshal(blockcipher.PublicLayerBlockCipherOptions{
		CipherType: blockcipher.AES256CTR, Hmac: l.hmac, CipherOptions: map[string][]byte{},
	})
	if err != nil {
		return nil, err
	}
	priv, err := json.Marshal(l.private)
	if err != nil {
		return nil, err
	}
	pems := make([][]byte, len(recipients))
	for i, r := range recipients {
		if len(r.pem) == 0 {
			return nil, fmt.Errorf("encrypt: recipient %d: %w: not made by ParseRecipient or NewRecipient", i, ErrUnsupported)
		}
		pems[i] = r.pem
	}
	// One JWE for every recipient, as ocicrypt writes it.
	wrapped, err := jwe.NewKeyWrapper().WrapKeys(&config.EncryptConfig{Parameters: map[string][][]byte{"pubkeys": pems}}, priv)
	if err != nil {
		return nil, fmt.Errorf("encrypt: wrap the layer key: %w", err)
	}

	l.Plaintext = plain
	l.Plaintext.Digest, l.Plaintext.Size = l.private.Digest, n
	l.Descriptor = ocispec.Descriptor{
		MediaType:   EncryptedMediaType(plain.MediaType),
		Digest:      cipherDigester.Digest(),
		Size:        n, // CTR: as long as the plaintext
		Annotations: maps.Clone(plain.Annotations),
	}
	if l.Descriptor.Annotations == nil {
		l.Descriptor.Annotations = map[string]string{}
	}
	l.Descriptor.Annotations[AnnotationKeysJWE] = base64.StdEncoding.EncodeToString(wrapped)
	l.Descriptor.Annotations[AnnotationPubOpts] = base64.StdEncoding.EncodeToString(pub)
	return l, nil
}

// encrypter starts AES-256-CTR over r with the layer's key and nonce.
func (l *EncryptedLayer) encrypter(r io.Reader) (io.Reader, blockcipher.Finalizer, error) {
	c, err := blockcipher.NewAESCTRLayerBlockCipher(symmetricKeyBytes * 8)
	if err != nil {
		return nil, nil, err
	}
	return c.Encrypt(r, blockcipher.LayerBlockCipherOptions{Private: l.private})
}

// Open streams the ciphertext again, byte for byte what EncryptLayer
// measured. The plaintext must not have changed since: if it has, the
// stream ends with an error instead of io.EOF (and the registry, given the
// measured digest, refuses the blob anyway).
func (l *EncryptedLayer) Open() (io.ReadCloser, error) {
	rc, err := l.open()
	if err != nil {
		return nil, err
	}
	enc, fin, err := l.encrypter(rc)
	if err != nil {
		rc.Close()
		return nil, err
	}
	return &reencrypted{r: enc, c: rc, fin: fin, want: l.hmac}, nil
}

// reencrypted is the second pass: at the end it checks that the HMAC is
// the first pass's.
type reencrypted struct {
	r    io.Reader
	c    io.Closer
	fin  blockcipher.Finalizer
	want []byte
}

func (r *reencrypted) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err == io.EOF {
		opts, ferr := r.fin()
		if ferr != nil {
			return n, fmt.Errorf("encrypt: %w", ferr)
		}
		if !hmac.Equal(opts.Public.Hmac, r.want) {
			return n, errors.New("encrypt: the file changed between the two passes over it")
		}
	}
	return n, err
}

func (r *reencrypted) Close() error { return r.c.Close() }

// Key is the layer's key, for a caller that keeps or releases it (a test,
// a key broker seeded at push time).
func (l *EncryptedLayer) Key() (LayerKey, error) {
	b, err := json.Marshal(l.private)
	return LayerKey(b), err
}

// ctxReader stops a long read when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
