package runtime

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/opencontainers/go-digest"
)

// WrapDomain is the first field of every key-wrapping info string: it
// keeps a key derived for modelattest's key release distinct from any
// other use of the same ECDH secret, and names the format's version.
const WrapDomain = "modelattest-key-wrap-v1"

// KeyReleaseFormat names the broker's key-release document.
const KeyReleaseFormat = "modelattest-key-release/v1"

// gcmNonceSize is AES-GCM's standard nonce length.
const gcmNonceSize = 12

// ErrUnwrap is wrapped by every failure to unwrap a released key: a wrong
// recipient key, a flipped byte, a key wrapped for another model or layer.
var ErrUnwrap = errors.New("key release: unwrap")

// KeyRelease is what the broker returns once evidence passes: the layer
// keys of one model, each wrapped to the guest's ephemeral P-256 key.
// docs/RUNTIME.md describes the format byte by byte.
type KeyRelease struct {
	// Format is KeyReleaseFormat.
	Format string `json:"format"`
	// Model is the manifest digest the keys belong to.
	Model digest.Digest `json:"model"`
	// BrokerKey is the DER SubjectPublicKeyInfo of the broker's ephemeral
	// P-256 key, made for this response only (base64 in JSON).
	BrokerKey []byte `json:"broker_key"`
	// Keys are the wrapped layer keys, in layer-digest order.
	Keys []WrappedKey `json:"keys"`
	// RequestID names the request in the broker's decision event and log.
	RequestID string `json:"request_id,omitempty"`
}

// WrappedKey is one layer key: Wrapped is the 12-byte AES-GCM nonce, then
// the ciphertext of the key, then the 16-byte tag (base64 in JSON).
type WrappedKey struct {
	Layer   digest.Digest `json:"layer"`
	Wrapped []byte        `json:"wrapped"`
}

// wrapInfo is the HKDF info (and the AES-GCM additional data) of one layer
// key: WrapDomain, the model digest, the layer digest, the broker's and
// the recipient's public keys (DER SPKI), each as a 4-byte big-endian
// length then the bytes, so no two different inputs encode alike.
func wrapInfo(model, layer digest.Digest, brokerSPKI, recipientSPKI []byte) []byte {
	var out []byte
	for _, f := range [][]byte{[]byte(WrapDomain), []byte(model), []byte(layer), brokerSPKI, recipientSPKI} {
		out = binary.BigEndian.AppendUint32(out, uint32(len(f)))
		out = append(out, f...)
	}
	return out
}

// wrapAEAD derives the layer's AES-256-GCM key from the ECDH secret with
// HKDF-SHA256 (no salt: the secret is fresh for every response).
func wrapAEAD(secret, info []byte) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, secret, nil, string(info), 32)
	if err != nil {
		return nil, err
	}
	b, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// ParseP256SPKI reads a DER SubjectPublicKeyInfo that must hold a P-256
// key, as an ECDH key.
func ParseP256SPKI(der []byte) (*ecdh.PublicKey, error) {
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("not a DER SubjectPublicKeyInfo: %w", err)
	}
	var k *ecdh.PublicKey
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		if p.Curve.Params().Name != "P-256" {
			return nil, fmt.Errorf("the key is on %s, want P-256", p.Curve.Params().Name)
		}
		if k, err = p.ECDH(); err != nil {
			return nil, err
		}
	case *ecdh.PublicKey:
		k = p
	default:
		return nil, fmt.Errorf("a %T key, want an EC P-256 key", pub)
	}
	if k.Curve() != ecdh.P256() {
		return nil, fmt.Errorf("the key is not on P-256")
	}
	return k, nil
}

// WrapKeys wraps each layer key of model to recipient (the guest's
// ephemeral P-256 key, DER SPKI) under a fresh broker key: ECDH, then
// HKDF-SHA256 with an info string binding the model and layer digests and
// both public keys, then AES-256-GCM.
func WrapKeys(model digest.Digest, keys map[digest.Digest][]byte, recipientSPKI []byte) (*KeyRelease, error) {
	eph, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return wrapKeysWith(model, keys, recipientSPKI, eph, rand.Reader)
}

// wrapKeysWith is WrapKeys with the broker key and the source of GCM
// nonces given (the worked example in the tests fixes both).
func wrapKeysWith(model digest.Digest, keys map[digest.Digest][]byte, recipientSPKI []byte, eph *ecdh.PrivateKey, rnd io.Reader) (*KeyRelease, error) {
	rpub, err := ParseP256SPKI(recipientSPKI)
	if err != nil {
		return nil, fmt.Errorf("recipient key: %w", err)
	}
	bspki, err := x509.MarshalPKIXPublicKey(eph.PublicKey())
	if err != nil {
		return nil, err
	}
	secret, err := eph.ECDH(rpub)
	if err != nil {
		return nil, err
	}
	rel := &KeyRelease{Format: KeyReleaseFormat, Model: model, BrokerKey: bspki, Keys: []WrappedKey{}}
	layers := make([]digest.Digest, 0, len(keys))
	for l := range keys {
		layers = append(layers, l)
	}
	slices.Sort(layers)
	for _, l := range layers {
		info := wrapInfo(model, l, bspki, recipientSPKI)
		aead, err := wrapAEAD(secret, info)
		if err != nil {
			return nil, err
		}
		n := make([]byte, gcmNonceSize, gcmNonceSize+len(keys[l])+aead.Overhead())
		if _, err := io.ReadFull(rnd, n); err != nil {
			return nil, err
		}
		rel.Keys = append(rel.Keys, WrappedKey{Layer: l, Wrapped: aead.Seal(n, n, keys[l], info)})
	}
	return rel, nil
}

// Unwrap opens every key of rel with priv, the ephemeral key whose public
// half was bound into the evidence, for the model the caller asked about.
// Any failure (another model, a wrong key, one flipped byte, a duplicate
// layer) refuses the whole release: no key is returned.
func (rel *KeyRelease) Unwrap(priv *ecdh.PrivateKey, model digest.Digest) (map[digest.Digest][]byte, error) {
	if rel.Format != KeyReleaseFormat {
		return nil, fmt.Errorf("%w: format %q, want %q", ErrUnwrap, rel.Format, KeyReleaseFormat)
	}
	if rel.Model != model {
		return nil, fmt.Errorf("%w: the keys are for model %s, not %s", ErrUnwrap, rel.Model, model)
	}
	bpub, err := ParseP256SPKI(rel.BrokerKey)
	if err != nil {
		return nil, fmt.Errorf("%w: broker key: %w", ErrUnwrap, err)
	}
	rspki, err := x509.MarshalPKIXPublicKey(priv.PublicKey())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnwrap, err)
	}
	secret, err := priv.ECDH(bpub)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnwrap, err)
	}
	out := make(map[digest.Digest][]byte, len(rel.Keys))
	for _, k := range rel.Keys {
		if err := k.Layer.Validate(); err != nil {
			return nil, fmt.Errorf("%w: layer %q: %w", ErrUnwrap, k.Layer, err)
		}
		if _, dup := out[k.Layer]; dup {
			return nil, fmt.Errorf("%w: layer %s twice", ErrUnwrap, k.Layer)
		}
		info := wrapInfo(model, k.Layer, rel.BrokerKey, rspki)
		aead, err := wrapAEAD(secret, info)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnwrap, err)
		}
		if len(k.Wrapped) < gcmNonceSize+aead.Overhead() {
			return nil, fmt.Errorf("%w: layer %s: %d bytes, too short", ErrUnwrap, k.Layer, len(k.Wrapped))
		}
		key, err := aead.Open(nil, k.Wrapped[:gcmNonceSize], k.Wrapped[gcmNonceSize:], info)
		if err != nil {
			return nil, fmt.Errorf("%w: layer %s: the wrapped key does not authenticate (another recipient, model or layer, or altered)", ErrUnwrap, k.Layer)
		}
		out[k.Layer] = key
	}
	return out, nil
}
