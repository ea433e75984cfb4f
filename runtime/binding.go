package runtime

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/binary"
	"fmt"
)

// Domain is the first field of every binding: it keeps a REPORT_DATA made
// for modelattest from ever equalling one made for another purpose, and
// names the encoding's version.
const Domain = "modelattest-runtime-v1"

// Binding is what REPORT_DATA commits to. The zero KeyHash (no key) is
// encoded as an empty field, distinct from any real 32-byte hash.
type Binding struct {
	// ManifestDigest is the model's manifest digest as text, "sha256:…".
	ManifestDigest string
	// PolicyDigest is the policy file's digest as text, "sha256:…".
	PolicyDigest string
	// Nonce is the relying party's challenge, raw bytes (1 to 64).
	Nonce []byte
	// KeyHash is the SHA-256 of the DER SubjectPublicKeyInfo of the
	// ephemeral P-256 key a released secret is to be wrapped to; nil when
	// no key is to be released.
	KeyHash []byte
}

// Encode returns the bytes that are hashed: for each of Domain,
// ManifestDigest, PolicyDigest, Nonce and KeyHash in that order, a 4-byte
// big-endian length then the bytes. Length prefixes make the encoding
// injective: no two different bindings encode alike.
func (b Binding) Encode() ([]byte, error) {
	if b.ManifestDigest == "" || b.PolicyDigest == "" {
		return nil, fmt.Errorf("binding: the manifest digest and the policy digest are required")
	}
	if len(b.Nonce) == 0 || len(b.Nonce) > 64 {
		return nil, fmt.Errorf("binding: the nonce is %d bytes, want 1 to 64", len(b.Nonce))
	}
	if b.KeyHash != nil && len(b.KeyHash) != sha256.Size {
		return nil, fmt.Errorf("binding: the key hash is %d bytes, want %d (SHA-256)", len(b.KeyHash), sha256.Size)
	}
	var out []byte
	for _, f := range [][]byte{[]byte(Domain), []byte(b.ManifestDigest), []byte(b.PolicyDigest), b.Nonce, b.KeyHash} {
		out = binary.BigEndian.AppendUint32(out, uint32(len(f)))
		out = append(out, f...)
	}
	return out, nil
}

// ReportData is SHA-512 of Encode: the 64 bytes a TEE report carries.
func (b Binding) ReportData() ([64]byte, error) {
	enc, err := b.Encode()
	if err != nil {
		return [64]byte{}, err
	}
	return sha512.Sum512(enc), nil
}

// KeyHash is the SHA-256 of pub's DER SubjectPublicKeyInfo; pub must be a
// P-256 key.
func KeyHash(pub *ecdsa.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("binding: %w", err)
	}
	if pub.Curve.Params().Name != "P-256" {
		return nil, fmt.Errorf("binding: the ephemeral key is on %s, want P-256", pub.Curve.Params().Name)
	}
	h := sha256.Sum256(der)
	return h[:], nil
}
