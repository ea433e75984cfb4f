package encryption_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/modelattest/modelattest/encryption"
)

// Encrypt one layer for a recipient, then decrypt it as the holder of the
// recipient's private key: unwrap the keys from the manifest, decrypt the
// ciphertext, and get the plaintext digest checked.
func Example() {
	ctx := context.Background()
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	p8, _ := x509.MarshalPKCS8PrivateKey(priv)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki})
	privPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})

	r, err := encryption.NewRecipient(pubPEM)
	if err != nil {
		panic(err)
	}
	weights := []byte("the model's weights")
	open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(weights)), nil }
	layer, err := encryption.EncryptLayer(ctx, ocispec.Descriptor{MediaType: "application/vnd.cncf.model.weight.v1.raw"}, open, []encryption.Recipient{r})
	if err != nil {
		panic(err)
	}
	rc, _ := layer.Open() // the ciphertext, as a push uploads it
	ciphertext, _ := io.ReadAll(rc)
	rc.Close()
	fmt.Println(layer.Descriptor.MediaType)
	fmt.Println(layer.Descriptor.Digest == digest.FromBytes(ciphertext), layer.Plaintext.Digest == digest.FromBytes(weights))

	m := &ocispec.Manifest{Layers: []ocispec.Descriptor{layer.Descriptor}}
	keys, err := encryption.UnwrapKeys(ctx, m, privPEM)
	if err != nil {
		panic(err)
	}
	fmt.Println(keys[layer.Descriptor.Digest]) // never the key itself
	var out bytes.Buffer
	pt, err := encryption.Decrypt(ctx, layer.Descriptor, keys[layer.Descriptor.Digest], bytes.NewReader(ciphertext), &out)
	if err != nil {
		panic(err)
	}
	fmt.Println(out.String(), pt.Digest == layer.Plaintext.Digest)
	// Output:
	// application/vnd.cncf.model.weight.v1.raw+encrypted
	// true true
	// LayerKey(redacted)
	// the model's weights true
}
