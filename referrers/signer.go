package referrers

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
)

// ErrKey is wrapped by every error about a key that cannot be used: not
// found, unreadable, wrongly encrypted, of an unsupported kind.
var ErrKey = errors.New("signing key")

// Signer signs statements into Sigstore bundles: a key (file, cosign key,
// KMS), optionally with an X.509 certificate chain, or a keyless identity
// (Fulcio certificate and Rekor entry).
type Signer struct {
	keypair sign.Keypair
	opts    sign.BundleOptions
	// Identity names the signer in messages: a key hint, a certificate
	// subject or a keyless identity.
	Identity string
}

// PasswordFunc supplies the password of an encrypted key.
type PasswordFunc func() ([]byte, error)

// EnvPassword reads the password from $COSIGN_PASSWORD (empty when unset),
// as cosign does.
func EnvPassword() ([]byte, error) { return []byte(os.Getenv("COSIGN_PASSWORD")), nil }

// LoadSigner loads a signing key: a KMS URI, a cosign encrypted key file,
// or an unencrypted PKCS#8 / EC / PKCS#1 PEM file. ECDSA P-256/P-384,
// Ed25519 and RSA keys are supported.
//
// A KMS URI works only when the program has registered sigstore's provider
// for its scheme, by importing it for its side effect (the library imports
// none, so a program that needs no KMS carries no cloud SDK):
//
//	awskms://      _ "github.com/sigstore/sigstore/pkg/signature/kms/aws"
//	gcpkms://      _ "github.com/sigstore/sigstore/pkg/signature/kms/gcp"
//	azurekms://    _ "github.com/sigstore/sigstore/pkg/signature/kms/azure"
//	hashivault://  _ "github.com/sigstore/sigstore/pkg/signature/kms/hashivault"
//
// Without it the error names the import. The same holds for KMS URIs given
// to LoadKeyVerifier and as policy key anchors.
func LoadSigner(ctx context.Context, ref string, password PasswordFunc) (*Signer, error) {
	var sv signature.SignerVerifier
	var err error
	if strings.Contains(ref, "://") {
		sv, err = kmsSignerVerifier(ctx, ref)
		if err != nil {
			return nil, fmt.Errorf("%w %s: %w", ErrKey, ref, err)
		}
	} else {
		sv, err = loadKeyFile(ref, password)
		if err != nil {
			return nil, err
		}
	}
	kp, err := newKeypair(sv)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrKey, ref, err)
	}
	return &Signer{keypair: kp, Identity: "key " + string(kp.GetHint())}, nil
}

func loadKeyFile(path string, password PasswordFunc) (signature.SignerVerifier, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, fmt.Errorf("%w %s: not a PEM file", ErrKey, path)
	}
	switch block.Type {
	case cosignPrivateKeyPEM, sigstorePrivateKeyPEM:
		if password == nil {
			password = EnvPassword
		}
		pass, err := password()
		if err != nil {
			return nil, fmt.Errorf("%w %s: password: %w", ErrKey, path, err)
		}
		return loadCosignKey(path, block, pass)
	case "PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY":
		priv, err := cryptoutils.UnmarshalPEMToPrivateKey(raw, cryptoutils.SkipPassword)
		if err != nil {
			return nil, fmt.Errorf("%w %s: %w", ErrKey, path, err)
		}
		sv, err := signature.LoadDefaultSignerVerifier(priv)
		if err != nil {
			return nil, fmt.Errorf("%w %s: %w", ErrKey, path, err)
		}
		return sv, nil
	case "ENCRYPTED PRIVATE KEY":
		return nil, fmt.Errorf("%w %s: PKCS#8 encrypted keys are not supported; use a cosign key (modelattest keygen) or an unencrypted key", ErrKey, path)
	case "PUBLIC KEY":
		return nil, fmt.Errorf("%w %s: a public key cannot sign", ErrKey, path)
	}
	return nil, fmt.Errorf("%w %s: unsupported PEM block %q", ErrKey, path, block.Type)
}

// NewSigner signs with an in-memory private key (ECDSA, Ed25519 or RSA).
func NewSigner(priv crypto.Signer) (*Signer, error) {
	sv, err := signature.LoadDefaultSignerVerifier(priv)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	kp, err := newKeypair(sv)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	return &Signer{keypair: kp, Identity: "key " + string(kp.GetHint())}, nil
}

// WithCertificateChain attaches an X.509 chain (leaf first, then
// intermediates; PEM) to the signer's bundles, for a company PKI. The leaf
// must hold the signer's public key. A self-signed root in the file is
// left out: verifiers bring their own.
func (s *Signer) WithCertificateChain(chainPEM []byte) (*Signer, error) {
	certs, err := cryptoutils.UnmarshalCertificatesFromPEM(chainPEM)
	if err != nil || len(certs) == 0 {
		return nil, fmt.Errorf("certificate chain: no PEM certificate found")
	}
	if !publicKeysEqual(certs[0].PublicKey, s.keypair.GetPublicKey()) {
		return nil, fmt.Errorf("certificate chain: the leaf certificate is for another key than the signer's")
	}
	var ders [][]byte
	for i, c := range certs {
		if i > 0 && c.CheckSignatureFrom(c) == nil && bytes.Equal(c.RawIssuer, c.RawSubject) {
			continue
		}
		ders = append(ders, c.Raw)
	}
	out := *s
	out.opts.CertificateChainProvider = staticChain(ders)
	out.Identity = "certificate " + certs[0].Subject.String()
	return &out, nil
}

type staticChain [][]byte

func (c staticChain) GetCertificateChain(context.Context, sign.Keypair, *sign.CertificateProviderOptions) ([][]byte, error) {
	return c, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}

// keypair adapts a sigstore SignerVerifier (a key file or a KMS key) to
// sigstore-go's sign.Keypair.
type keypair struct {
	sv   signature.SignerVerifier
	pub  crypto.PublicKey
	alg  signature.AlgorithmDetails
	hint []byte
}

func newKeypair(sv signature.SignerVerifier) (*keypair, error) {
	pub, err := sv.PublicKey()
	if err != nil {
		return nil, err
	}
	var details protocommon.PublicKeyDetails
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			details = protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256
		case elliptic.P384():
			details = protocommon.PublicKeyDetails_PKIX_ECDSA_P384_SHA_384
		case elliptic.P521():
			details = protocommon.PublicKeyDetails_PKIX_ECDSA_P521_SHA_512
		default:
			return nil, fmt.Errorf("unsupported ECDSA curve")
		}
	case ed25519.PublicKey:
		details = protocommon.PublicKeyDetails_PKIX_ED25519
	case *rsa.PublicKey:
		switch {
		case k.Size() >= 512:
			details = protocommon.PublicKeyDetails_PKIX_RSA_PKCS1V15_4096_SHA256
		case k.Size() >= 384:
			details = protocommon.PublicKeyDetails_PKIX_RSA_PKCS1V15_3072_SHA256
		default:
			details = protocommon.PublicKeyDetails_PKIX_RSA_PKCS1V15_2048_SHA256
		}
	default:
		return nil, fmt.Errorf("unsupported key type %T", pub)
	}
	alg, err := signature.GetAlgorithmDetails(details)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(der)
	return &keypair{sv: sv, pub: pub, alg: alg, hint: []byte(base64.StdEncoding.EncodeToString(h[:]))}, nil
}

func (k *keypair) GetHashAlgorithm() protocommon.HashAlgorithm { return k.alg.GetProtoHashType() }
func (k *keypair) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	return k.alg.GetSignatureAlgorithm()
}
func (k *keypair) GetHint() []byte                { return k.hint }
func (k *keypair) GetPublicKey() crypto.PublicKey { return k.pub }
func (k *keypair) GetKeyAlgorithm() string {
	switch k.alg.GetKeyType() {
	case signature.ECDSA:
		return "ECDSA"
	case signature.RSA:
		return "RSA"
	case signature.ED25519:
		return "ED25519"
	}
	return ""
}

func (k *keypair) GetPublicKeyPem() (string, error) {
	b, err := cryptoutils.MarshalPublicKeyToPEM(k.pub)
	return string(b), err
}

func (k *keypair) SignData(ctx context.Context, data []byte) ([]byte, []byte, error) {
	sig, err := k.sv.SignMessage(bytes.NewReader(data), options.WithContext(ctx))
	if err != nil {
		return nil, nil, err
	}
	digest := data
	if hf := k.alg.GetHashType(); hf != crypto.Hash(0) {
		h := hf.New()
		h.Write(data)
		digest = h.Sum(nil)
	}
	return sig, digest, nil
}
