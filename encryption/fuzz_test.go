package encryption

import (
	"bytes"
	"context"
	"encoding/base64"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// FuzzDecrypt: whatever a registry serves as ciphertext and public
// options, decryption with the right key either fails or gives exactly
// the plaintext the key names; it never panics.
func FuzzDecrypt(f *testing.F) {
	k := newKeyPair(f, "p256")
	plain := []byte("weights that a registry must not be able to change")
	l, ct, m := encrypt(f, plain, k.recipient(f))
	keys, err := UnwrapKeys(context.Background(), m, k.priv)
	if err != nil {
		f.Fatal(err)
	}
	key := keys[l.Descriptor.Digest]
	pub := l.Descriptor.Annotations[AnnotationPubOpts]
	f.Add(ct, pub)
	f.Add(ct[:10], pub)
	f.Add([]byte{}, base64.StdEncoding.EncodeToString([]byte(`{"cipher":"AES_256_CTR_HMAC_SHA256","hmac":""}`)))
	f.Fuzz(func(t *testing.T, ct []byte, pubopts string) {
		desc := l.Descriptor
		desc.Annotations = map[string]string{AnnotationPubOpts: pubopts}
		var out bytes.Buffer
		pt, err := Decrypt(context.Background(), desc, key, bytes.NewReader(ct), &out)
		if err == nil && (!bytes.Equal(out.Bytes(), plain) || pt.Digest != l.Plaintext.Digest) {
			t.Fatalf("decrypted %q without an error, want only %q", out.Bytes(), plain)
		}
	})
}

// FuzzUnwrapKeys: a hostile keys.jwe annotation never panics and never
// yields a key that is not a well-formed one.
func FuzzUnwrapKeys(f *testing.F) {
	k := newKeyPair(f, "p256")
	l, _, _ := encrypt(f, []byte("w"), k.recipient(f))
	f.Add(l.Descriptor.Annotations[AnnotationKeysJWE])
	f.Add("")
	f.Add("e30=,e30=")
	f.Fuzz(func(t *testing.T, ann string) {
		d := l.Descriptor
		d.Annotations = map[string]string{AnnotationKeysJWE: ann}
		keys, err := UnwrapKeys(context.Background(), &ocispec.Manifest{Layers: []ocispec.Descriptor{d}}, k.priv)
		if err != nil {
			return
		}
		for _, key := range keys {
			if _, err := key.privateOptions(); err != nil {
				t.Fatalf("unwrapped a malformed key: %v", err)
			}
		}
	})
}
