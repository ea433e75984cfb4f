package referrers

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// The PEM block types of a cosign encrypted private key: cosign writes the
// second since v2, and reads both.
const (
	cosignPrivateKeyPEM   = "ENCRYPTED COSIGN PRIVATE KEY"
	sigstorePrivateKeyPEM = "ENCRYPTED SIGSTORE PRIVATE KEY"
)

// loadCosignKey decrypts a cosign private key: a PKCS#8 key sealed with
// go-securesystemslib's encrypted format (scrypt + NaCl secretbox), the
// library cosign itself uses. Ed25519 keys sign pure Ed25519, as our other
// keys do (cosign defaults to Ed25519ph for its transparency log).
func loadCosignKey(path string, block *pem.Block, password []byte) (signature.SignerVerifier, error) {
	der, err := encrypted.Decrypt(block.Bytes, password)
	if err != nil {
		// Every failure here is the sealed box refusing to open: the
		// password is wrong, or the file was changed.
		return nil, fmt.Errorf("%w %s: wrong password (or a damaged key file): %w", ErrKey, path, err)
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w %s: decrypted key: %w", ErrKey, path, err)
	}
	sv, err := signature.LoadDefaultSignerVerifier(priv)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrKey, path, err)
	}
	return sv, nil
}

// newCosignKeyPair makes an ECDSA P-256 key pair in the files cosign
// generate-key-pair writes: the PKCS#8 private key encrypted with password
// under an ENCRYPTED SIGSTORE PRIVATE KEY block, and the PKIX public key.
func newCosignKeyPair(password []byte) (privPEM, pubPEM []byte, err error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	return marshalCosignKey(priv, password)
}

func marshalCosignKey(priv crypto.Signer, password []byte) (privPEM, pubPEM []byte, err error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("encode private key: %w", err)
	}
	sealed, err := encrypted.Encrypt(der, password)
	if err != nil {
		return nil, nil, fmt.Errorf("encrypt private key: %w", err)
	}
	if pubPEM, err = cryptoutils.MarshalPublicKeyToPEM(priv.Public()); err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: sigstorePrivateKeyPEM, Bytes: sealed}), pubPEM, nil
}
