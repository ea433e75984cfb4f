package encryption

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
)

// minRSABits is the smallest RSA key a layer key is wrapped to.
const minRSABits = 2048

// Recipient is a public key that layer keys are wrapped to (JWE: RSA-OAEP
// for RSA keys, ECDH-ES+A256KW for EC keys, as ocicrypt's jwe keywrapper
// does). The zero value is not usable; make one with ParseRecipient or
// NewRecipient.
type Recipient struct {
	name string
	pem  []byte // PKIX "PUBLIC KEY" PEM, what ocicrypt's jwe keywrapper reads
}

// String names the recipient as it was given (jwe:PATH), never the key.
func (r Recipient) String() string { return r.name }

// ParseRecipient reads a recipient written as ocicrypt, skopeo and oras
// name it: "jwe:PATH", PATH a PEM public key file (PKIX "PUBLIC KEY": RSA
// of at least 2048 bits, or EC P-256, P-384 or P-521). Other schemes
// (pgp:, pkcs7:, pkcs11:, provider:) are ErrUnsupported.
func ParseRecipient(s string) (Recipient, error) {
	scheme, p, ok := strings.Cut(s, ":")
	if !ok || p == "" {
		return Recipient{}, fmt.Errorf("recipient %q: want jwe:PUBLIC-KEY.pem", s)
	}
	if scheme != "jwe" {
		return Recipient{}, fmt.Errorf("recipient %q: %w: scheme %q (only jwe: public keys are supported)", s, ErrUnsupported, scheme)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return Recipient{}, fmt.Errorf("recipient %q: %w", s, err)
	}
	r, err := NewRecipient(b)
	if err != nil {
		return Recipient{}, fmt.Errorf("recipient %q: %w", s, err)
	}
	r.name = s
	return r, nil
}

// NewRecipient makes a JWE recipient from a PEM public key (see
// ParseRecipient for the keys accepted).
func NewRecipient(pubPEM []byte) (Recipient, error) {
	block, _ := pem.Decode(pubPEM)
	if block == nil {
		return Recipient{}, fmt.Errorf("%w: not a PEM public key", ErrUnsupported)
	}
	if block.Type != "PUBLIC KEY" {
		return Recipient{}, fmt.Errorf("%w: PEM block %q, want a PUBLIC KEY", ErrUnsupported, block.Type)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return Recipient{}, fmt.Errorf("public key: %w", err)
	}
	name := ""
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return Recipient{}, fmt.Errorf("%w: RSA key of %d bits (at least %d)", ErrUnsupported, k.N.BitLen(), minRSABits)
		}
		name = fmt.Sprintf("jwe:RSA-%d", k.N.BitLen())
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return Recipient{}, fmt.Errorf("%w: EC curve %s (want P-256, P-384 or P-521)", ErrUnsupported, k.Curve.Params().Name)
		}
		name = "jwe:EC-" + k.Curve.Params().Name
	default:
		return Recipient{}, fmt.Errorf("%w: a %T public key (JWE wraps to RSA or EC keys)", ErrUnsupported, pub)
	}
	return Recipient{name: name, pem: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: block.Bytes})}, nil
}
