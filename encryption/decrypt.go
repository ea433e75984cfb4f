package encryption

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/containers/ocicrypt/blockcipher"
	"github.com/containers/ocicrypt/config"
	"github.com/containers/ocicrypt/keywrap/jwe"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// layerName names layer i of a manifest for a message: its index, digest
// and, when it has one, its file path. It never names a key.
func layerName(i int, l ocispec.Descriptor) string {
	for _, a := range []string{"org.cncf.model.filepath", ocispec.AnnotationTitle} {
		if p := l.Annotations[a]; p != "" {
			return fmt.Sprintf("layer %d %q (%s)", i, p, l.Digest)
		}
	}
	return fmt.Sprintf("layer %d (%s)", i, l.Digest)
}

// UnwrapKeys unwraps the key of every encrypted layer of m with the
// recipient's private key privPEM (PEM: PKCS#8, PKCS#1 or SEC 1; not
// password-protected). The result has one key per encrypted layer, by
// the encrypted layer's digest, and is empty when no layer is encrypted.
// Errors name the layer, never the key: ErrUnwrap when the key is not one
// of the layer's recipients, ErrUnsupported when the layer's key is not
// JWE-wrapped.
func UnwrapKeys(ctx context.Context, m *ocispec.Manifest, privPEM []byte) (Keys, error) {
	if m == nil {
		return nil, errors.New("unwrap keys: no manifest")
	}
	der, err := privateKeyDER(privPEM)
	if err != nil {
		return nil, err
	}
	dc := &config.DecryptConfig{Parameters: map[string][][]byte{
		"privkeys": {der}, "privkeys-passwords": {nil},
	}}
	kw := jwe.NewKeyWrapper()
	keys := Keys{}
	for i, l := range m.Layers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !IsEncrypted(l.MediaType) {
			continue
		}
		if _, ok := keys[l.Digest]; ok {
			continue
		}
		ann := l.Annotations[AnnotationKeysJWE]
		if ann == "" {
			return nil, fmt.Errorf("%s: %w: encrypted, but its key is not wrapped with JWE (no %s annotation)", layerName(i, l), ErrUnsupported, AnnotationKeysJWE)
		}
		var key LayerKey
		for _, part := range strings.Split(ann, ",") {
			b, err := base64.StdEncoding.DecodeString(part)
			if err != nil {
				return nil, fmt.Errorf("%s: %s annotation is not base64", layerName(i, l), AnnotationKeysJWE)
			}
			// ocicrypt's errors here say which step failed, never the key.
			if opts, err := kw.UnwrapKey(dc, b); err == nil {
				key = opts
				break
			}
		}
		if key == nil {
			return nil, fmt.Errorf("%s: %w", layerName(i, l), ErrUnwrap)
		}
		if _, err := key.privateOptions(); err != nil {
			return nil, fmt.Errorf("%s: %w", layerName(i, l), err)
		}
		keys[l.Digest] = key
	}
	return keys, nil
}

// privateKeyDER reads a PEM private key and gives it as PKCS#8 DER, which
// ocicrypt's JWE unwrapping reads (it does not read a SEC 1 "EC PRIVATE
// KEY" PEM, what openssl ecparam writes).
func privateKeyDER(privPEM []byte) ([]byte, error) {
	block, _ := pem.Decode(privPEM)
	if block == nil {
		return nil, errors.New("decryption key: not a PEM private key")
	}
	if _, ok := block.Headers["DEK-Info"]; ok || block.Type == "ENCRYPTED PRIVATE KEY" {
		return nil, fmt.Errorf("decryption key: %w: a password-protected private key (decrypt it first: openssl pkey -in KEY -out PLAIN)", ErrUnsupported)
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("decryption key: %w: PEM block %q", ErrUnsupported, block.Type)
	}
	if err != nil {
		// x509's parse errors describe the structure, not the key.
		return nil, fmt.Errorf("decryption key: %w", err)
	}
	return x509.MarshalPKCS8PrivateKey(key)
}

// publicOptions reads an encrypted layer's public options (cipher, HMAC).
func publicOptions(desc ocispec.Descriptor) (blockcipher.PublicLayerBlockCipherOptions, error) {
	var p blockcipher.PublicLayerBlockCipherOptions
	s := desc.Annotations[AnnotationPubOpts]
	if s == "" {
		return p, fmt.Errorf("%w: no %s annotation", ErrUnsupported, AnnotationPubOpts)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return p, fmt.Errorf("%s annotation is not base64", AnnotationPubOpts)
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("%s annotation: %w", AnnotationPubOpts, err)
	}
	if p.CipherType != blockcipher.AES256CTR {
		return p, fmt.Errorf("%w: cipher %q", ErrUnsupported, p.CipherType)
	}
	return p, nil
}

// Plaintext says what a decryption produced.
type Plaintext struct {
	// Digest and Size are the plaintext's, measured while it was written
	// and equal to the digest the layer key names.
	Digest digest.Digest
	Size   int64
}

// Decrypt streams the ciphertext of the encrypted layer desc (its pubopts
// annotation read) from r, decrypted with key, into w. It succeeds only
// when ocicrypt's integrity checks hold: the HMAC over the ciphertext
// matches the layer's public options, and the plaintext hashes to the
// digest in the key's private options; otherwise the error wraps
// ErrIntegrity. w has then received bytes that must be thrown away:
// DecryptFile does that.
func Decrypt(ctx context.Context, desc ocispec.Descriptor, key LayerKey, r io.Reader, w io.Writer) (Plaintext, error) {
	if len(key) == 0 {
		return Plaintext{}, fmt.Errorf("layer %s: %w", desc.Digest, ErrNoKey)
	}
	priv, err := key.privateOptions()
	if err != nil {
		return Plaintext{}, fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	pub, err := publicOptions(desc)
	if err != nil {
		return Plaintext{}, fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	h, err := blockcipher.NewLayerBlockCipherHandler()
	if err != nil {
		return Plaintext{}, err
	}
	src := &sourceReader{r: &ctxReader{ctx: ctx, r: r}}
	plain, _, err := h.Decrypt(src, blockcipher.LayerBlockCipherOptions{Private: priv, Public: pub})
	if err != nil {
		// A wrong key length, a missing HMAC: the options do not fit.
		return Plaintext{}, fmt.Errorf("layer %s: %w: its public options do not fit its key", desc.Digest, ErrIntegrity)
	}
	d := priv.Digest.Algorithm().Digester()
	n, err := io.Copy(io.MultiWriter(errWriter{w}, d.Hash()), plain)
	switch {
	case err != nil && src.err != nil:
		return Plaintext{}, fmt.Errorf("layer %s: %w", desc.Digest, src.err)
	case err != nil && ctx.Err() != nil:
		return Plaintext{}, ctx.Err()
	case err != nil && !isWriteErr(err):
		// ocicrypt's message would quote the HMACs; ours says what failed.
		return Plaintext{}, fmt.Errorf("layer %s: %w: the ciphertext does not match its HMAC under this key", desc.Digest, ErrIntegrity)
	case err != nil:
		return Plaintext{}, fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	if got := d.Digest(); got != priv.Digest {
		return Plaintext{}, fmt.Errorf("layer %s: %w: the plaintext hashes to %s, its key says %s", desc.Digest, ErrIntegrity, got, priv.Digest)
	}
	return Plaintext{Digest: priv.Digest, Size: n}, nil
}

// sourceReader remembers an error of the ciphertext's own reader, so that
// it is not taken for a failed integrity check.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// writeErr marks an error of the plaintext's writer.
type writeErr struct{ error }

func (e writeErr) Unwrap() error { return e.error }

func isWriteErr(err error) bool {
	var we writeErr
	return errors.As(err, &we)
}

// errWriter tags the errors of w as write errors.
type errWriter struct{ w io.Writer }

func (e errWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil {
		err = writeErr{err}
	}
	return n, err
}

// DecryptFile decrypts the staged ciphertext cipherName (relative to
// root; it already passed its digest check against desc) into a new file
// plainName in the same root, created 0600 and never over an existing
// file. It returns only once ocicrypt's integrity checks hold (see
// Decrypt); on any failure plainName is removed, so no unverified
// plaintext remains.
func DecryptFile(ctx context.Context, root *os.Root, cipherName, plainName string, desc ocispec.Descriptor, key LayerKey) (Plaintext, error) {
	in, err := root.Open(cipherName)
	if err != nil {
		return Plaintext{}, err
	}
	defer in.Close()
	out, err := root.OpenFile(plainName, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return Plaintext{}, err
	}
	pt, err := Decrypt(ctx, desc, key, in, out)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = root.Remove(plainName)
		return Plaintext{}, err
	}
	return pt, nil
}
