package encryption

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/containers/ocicrypt/blockcipher"
	"github.com/opencontainers/go-digest"
)

// The annotations ocicrypt puts on an encrypted layer.
const (
	// AnnotationKeysJWE holds the layer's private options, wrapped in one
	// JWE to every recipient, base64-encoded (several JWEs are joined by
	// commas).
	AnnotationKeysJWE = "org.opencontainers.image.enc.keys.jwe"
	// AnnotationPubOpts holds the layer's public options (cipher, HMAC),
	// base64-encoded JSON.
	AnnotationPubOpts = "org.opencontainers.image.enc.pubopts"
	// annotationPrefix starts every ocicrypt annotation.
	annotationPrefix = "org.opencontainers.image.enc."
)

// EncryptedSuffix ends the media type of every encrypted layer, as in
// application/vnd.oci.image.layer.v1.tar+encrypted.
const EncryptedSuffix = "+encrypted"

// IsEncrypted reports whether mediaType is an encrypted layer's: it ends
// with the standard "+encrypted" suffix.
func IsEncrypted(mediaType string) bool { return strings.HasSuffix(mediaType, EncryptedSuffix) }

// EncryptedMediaType is the media type of mediaType's layers once
// encrypted.
func EncryptedMediaType(mediaType string) string {
	if IsEncrypted(mediaType) {
		return mediaType
	}
	return mediaType + EncryptedSuffix
}

// PlainMediaType is the media type an encrypted layer has once decrypted.
func PlainMediaType(mediaType string) string { return strings.TrimSuffix(mediaType, EncryptedSuffix) }

// Errors a caller may branch on.
var (
	// ErrNoKey: an encrypted layer has no key among those given.
	ErrNoKey = errors.New("no key for an encrypted layer")
	// ErrUnwrap: the private key given cannot unwrap a layer's key (it is
	// not one of the layer's recipients, or the wrapped key is damaged).
	ErrUnwrap = errors.New("the layer key cannot be unwrapped with this private key")
	// ErrIntegrity: a decrypted layer fails ocicrypt's HMAC over the
	// ciphertext or does not hash to the plaintext digest its key names.
	ErrIntegrity = errors.New("decrypted layer failed its integrity check")
	// ErrUnsupported: a layer is encrypted in a way this package does not
	// read (no JWE-wrapped key, an unknown cipher), or a recipient is not
	// a JWE public key.
	ErrUnsupported = errors.New("unsupported encryption")
)

// LayerKey is the secret of one encrypted layer: ocicrypt's private layer
// options (symmetric key, nonce and plaintext digest) as JSON, exactly the
// bytes ocicrypt wraps in the layer's JWE. It is opaque to callers, who
// only move it (a key broker wraps []byte(k) to a guest's key). It is
// never printed: String, GoString, Format and LogValue redact it.
type LayerKey []byte

// String redacts the key.
func (LayerKey) String() string { return "LayerKey(redacted)" }

// GoString redacts the key.
func (LayerKey) GoString() string { return "LayerKey(redacted)" }

// Format redacts the key whatever the verb (%x and %s included).
func (k LayerKey) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// LogValue redacts the key in structured logs.
func (k LayerKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// Keys are layer keys by the digest of the ENCRYPTED layer (the
// descriptor's digest in the manifest).
type Keys map[digest.Digest]LayerKey

// privateOptions parses the key. Its error never quotes the key.
func (k LayerKey) privateOptions() (blockcipher.PrivateLayerBlockCipherOptions, error) {
	var p blockcipher.PrivateLayerBlockCipherOptions
	if err := json.Unmarshal(k, &p); err != nil {
		return p, errors.New("the layer key is not ocicrypt private options (JSON)")
	}
	if len(p.SymmetricKey) == 0 {
		return p, errors.New("the layer key holds no symmetric key")
	}
	if err := p.Digest.Validate(); err != nil {
		return p, fmt.Errorf("the layer key's plaintext digest: %w", err)
	}
	return p, nil
}

// PlaintextDigest is the digest the layer has once decrypted, read from
// the key (authenticated by the JWE it was unwrapped from).
func (k LayerKey) PlaintextDigest() (digest.Digest, error) {
	p, err := k.privateOptions()
	if err != nil {
		return "", err
	}
	return p.Digest, nil
}
