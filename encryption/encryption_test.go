package encryption

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containers/ocicrypt"
	occonfig "github.com/containers/ocicrypt/config"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// keyPair is a recipient's PEM key pair made for a test.
type keyPair struct {
	name       string
	pub, priv  []byte // PKIX public key, PKCS#8 private key
	sec1OrPKCS []byte // the private key in its traditional form (PKCS#1 or SEC 1)
}

func newKeyPair(t testing.TB, kind string) keyPair {
	t.Helper()
	var signer any
	var trad []byte
	switch kind {
	case "rsa":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		signer = k
		trad = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	case "p256", "p384":
		c := elliptic.P256()
		if kind == "p384" {
			c = elliptic.P384()
		}
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		signer = k
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		trad = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	default:
		t.Fatalf("key kind %q", kind)
	}
	p8, err := x509.MarshalPKCS8PrivateKey(signer)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(signer.(crypto.Signer).Public())
	if err != nil {
		t.Fatal(err)
	}
	return keyPair{name: kind,
		pub:        pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}),
		priv:       pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}),
		sec1OrPKCS: trad,
	}
}

func (k keyPair) recipient(t testing.TB) Recipient {
	t.Helper()
	p := filepath.Join(t.TempDir(), k.name+".pub.pem")
	if err := os.WriteFile(p, k.pub, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := ParseRecipient("jwe:" + p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func bytesOpener(b []byte) Opener {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

func plainLayer(b []byte) ocispec.Descriptor {
	return ocispec.Descriptor{
		MediaType: "application/vnd.cncf.model.weight.v1.raw",
		Annotations: map[string]string{
			"org.cncf.model.filepath": "model.safetensors", ocispec.AnnotationTitle: "model.safetensors",
		},
		Digest: digest.FromBytes(b), Size: int64(len(b)),
	}
}

// encrypt makes one encrypted layer of b and its manifest.
func encrypt(t testing.TB, b []byte, rs ...Recipient) (*EncryptedLayer, []byte, *ocispec.Manifest) {
	t.Helper()
	l, err := EncryptLayer(context.Background(), plainLayer(b), bytesOpener(b), rs)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := l.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	ct, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return l, ct, &ocispec.Manifest{Layers: []ocispec.Descriptor{l.Descriptor}}
}

func TestRoundTrip(t *testing.T) {
	rsaK, p256, p384 := newKeyPair(t, "rsa"), newKeyPair(t, "p256"), newKeyPair(t, "p384")
	plain := bytes.Repeat([]byte("weights!"), 5000) // spans several reads and the delay buffer
	for _, tc := range []struct {
		name       string
		recipients []keyPair
		holder     keyPair
		privPEM    []byte
	}{
		{"rsa", []keyPair{rsaK}, rsaK, rsaK.priv},
		{"rsa PKCS#1 key", []keyPair{rsaK}, rsaK, rsaK.sec1OrPKCS},
		{"ec p256", []keyPair{p256}, p256, p256.priv},
		{"ec p256 SEC 1 key", []keyPair{p256}, p256, p256.sec1OrPKCS},
		{"ec p384", []keyPair{p384}, p384, p384.priv},
		{"two recipients, first", []keyPair{rsaK, p256}, rsaK, rsaK.priv},
		{"two recipients, second", []keyPair{rsaK, p256}, p256, p256.priv},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rs []Recipient
			for _, k := range tc.recipients {
				rs = append(rs, k.recipient(t))
			}
			l, ct, m := encrypt(t, plain, rs...)
			d := l.Descriptor
			if d.MediaType != "application/vnd.cncf.model.weight.v1.raw+encrypted" || !IsEncrypted(d.MediaType) {
				t.Errorf("media type %q", d.MediaType)
			}
			if d.Digest != digest.FromBytes(ct) || d.Size != int64(len(ct)) {
				t.Errorf("descriptor %s/%d does not describe the ciphertext %s/%d", d.Digest, d.Size, digest.FromBytes(ct), len(ct))
			}
			if bytes.Contains(ct, plain[:64]) || d.Digest == l.Plaintext.Digest {
				t.Error("ciphertext holds the plaintext")
			}
			if l.Plaintext.Digest != digest.FromBytes(plain) || l.Plaintext.Size != int64(len(plain)) {
				t.Errorf("plaintext descriptor %s/%d", l.Plaintext.Digest, l.Plaintext.Size)
			}
			if d.Annotations["org.cncf.model.filepath"] != "model.safetensors" || d.Annotations[AnnotationKeysJWE] == "" || d.Annotations[AnnotationPubOpts] == "" {
				t.Errorf("annotations %v", d.Annotations)
			}
			keys, err := UnwrapKeys(context.Background(), m, tc.privPEM)
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != 1 || keys[d.Digest] == nil {
				t.Fatalf("keys for %d layers", len(keys))
			}
			if pd, _ := keys[d.Digest].PlaintextDigest(); pd != digest.FromBytes(plain) {
				t.Errorf("key names plaintext %s", pd)
			}
			var out bytes.Buffer
			pt, err := Decrypt(context.Background(), d, keys[d.Digest], bytes.NewReader(ct), &out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), plain) || pt.Digest != digest.FromBytes(plain) || pt.Size != int64(len(plain)) {
				t.Errorf("decrypted %d bytes (%s), want the %d plaintext bytes", out.Len(), pt.Digest, len(plain))
			}
		})
	}
}

// TestOcicryptInterop: ocicrypt's own top-level API reads our layers, and
// we read its.
func TestOcicryptInterop(t *testing.T) {
	k := newKeyPair(t, "p256")
	plain := []byte("a small model file, encrypted across tools")
	dc := &occonfig.DecryptConfig{Parameters: map[string][][]byte{"privkeys": {k.priv}, "privkeys-passwords": {nil}}}

	t.Run("ocicrypt decrypts ours", func(t *testing.T) {
		l, ct, _ := encrypt(t, plain, k.recipient(t))
		// ocicrypt returns the digest its cipher handed back, which is
		// empty for AES-CTR in v1.3.2: only the bytes are compared.
		r, _, err := ocicrypt.DecryptLayer(dc, bytes.NewReader(ct), l.Descriptor, false)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, plain) {
			t.Errorf("ocicrypt decrypted %q", got)
		}
	})
	t.Run("we decrypt ocicrypt's", func(t *testing.T) {
		ec := &occonfig.EncryptConfig{Parameters: map[string][][]byte{"pubkeys": {k.pub}}}
		desc := plainLayer(plain)
		r, fin, err := ocicrypt.EncryptLayer(ec, bytes.NewReader(plain), desc)
		if err != nil {
			t.Fatal(err)
		}
		ct, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		ann, err := fin()
		if err != nil {
			t.Fatal(err)
		}
		enc := ocispec.Descriptor{MediaType: desc.MediaType + "+encrypted", Digest: digest.FromBytes(ct), Size: int64(len(ct)), Annotations: ann}
		keys, err := UnwrapKeys(context.Background(), &ocispec.Manifest{Layers: []ocispec.Descriptor{enc}}, k.priv)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if _, err := Decrypt(context.Background(), enc, keys[enc.Digest], bytes.NewReader(ct), &out); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), plain) {
			t.Errorf("decrypted %q", out.Bytes())
		}
	})
}

func TestEncryptionIsNotReproducible(t *testing.T) {
	k := newKeyPair(t, "p256")
	plain := []byte("same bytes, same recipient")
	a, _, _ := encrypt(t, plain, k.recipient(t))
	b, _, _ := encrypt(t, plain, k.recipient(t))
	if a.Descriptor.Digest == b.Descriptor.Digest || a.Descriptor.Annotations[AnnotationKeysJWE] == b.Descriptor.Annotations[AnnotationKeysJWE] {
		t.Error("two encryptions of the same bytes are equal: the key or nonce is not fresh")
	}
	if a.Plaintext.Digest != b.Plaintext.Digest {
		t.Error("plaintext digests differ")
	}
}

func TestUnwrapRefused(t *testing.T) {
	k, other := newKeyPair(t, "p256"), newKeyPair(t, "rsa")
	l, _, m := encrypt(t, []byte("secret weights"), k.recipient(t))
	noJWE := *m
	noJWE.Layers = []ocispec.Descriptor{l.Descriptor}
	noJWE.Layers[0].Annotations = map[string]string{"org.cncf.model.filepath": "w.bin", "org.opencontainers.image.enc.keys.pgp": "eA=="}
	badB64 := *m
	badB64.Layers = []ocispec.Descriptor{l.Descriptor}
	badB64.Layers[0].Annotations = map[string]string{AnnotationKeysJWE: "!!!"}
	encPEM, _ := x509.EncryptPEMBlock(rand.Reader, "RSA PRIVATE KEY", []byte("x"), []byte("pw"), x509.PEMCipherAES256) //nolint:staticcheck // an old encrypted PEM, as a user may hold
	for _, tc := range []struct {
		name string
		m    *ocispec.Manifest
		priv []byte
		is   error
		want string
	}{
		{"another key", m, other.priv, ErrUnwrap, `layer 0 "model.safetensors"`},
		{"no jwe annotation", &noJWE, k.priv, ErrUnsupported, `layer 0 "w.bin"`},
		{"bad base64", &badB64, k.priv, nil, "not base64"},
		{"not PEM", m, []byte("nope"), nil, "not a PEM private key"},
		{"public key given", m, k.pub, ErrUnsupported, "PUBLIC KEY"},
		{"password-protected", m, pem.EncodeToMemory(encPEM), ErrUnsupported, "password-protected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := UnwrapKeys(context.Background(), tc.m, tc.priv)
			if err == nil {
				t.Fatalf("unwrapped %d keys", len(keys))
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
	t.Run("plain layers need no key", func(t *testing.T) {
		keys, err := UnwrapKeys(context.Background(), &ocispec.Manifest{Layers: []ocispec.Descriptor{plainLayer([]byte("x"))}}, k.priv)
		if err != nil || len(keys) != 0 {
			t.Errorf("got %d keys, %v", len(keys), err)
		}
	})
}

// TestDecryptFileRefused: whatever fails, no plaintext file remains.
func TestDecryptFileRefused(t *testing.T) {
	k := newKeyPair(t, "rsa")
	plain := bytes.Repeat([]byte{7}, 100_000)
	l, ct, m := encrypt(t, plain, k.recipient(t))
	keys, err := UnwrapKeys(context.Background(), m, k.priv)
	if err != nil {
		t.Fatal(err)
	}
	key := keys[l.Descriptor.Digest]
	// A key for other plaintext: same symmetric key, another digest.
	var priv map[string]any
	_ = json.Unmarshal(key, &priv)
	priv["digest"] = digest.FromString("other").String()
	otherDigest, _ := json.Marshal(priv)
	// A key from another encryption of the same bytes.
	l2, _, m2 := encrypt(t, plain, k.recipient(t))
	keys2, err := UnwrapKeys(context.Background(), m2, k.priv)
	if err != nil {
		t.Fatal(err)
	}
	noPub := l.Descriptor
	noPub.Annotations = map[string]string{}

	for _, tc := range []struct {
		name string
		ct   func([]byte) []byte
		desc ocispec.Descriptor
		key  LayerKey
		is   error
	}{
		{"good", func(b []byte) []byte { return b }, l.Descriptor, key, nil},
		{"first byte flipped", func(b []byte) []byte { b[0] ^= 1; return b }, l.Descriptor, key, ErrIntegrity},
		{"last byte flipped", func(b []byte) []byte { b[len(b)-1] ^= 0x80; return b }, l.Descriptor, key, ErrIntegrity},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }, l.Descriptor, key, ErrIntegrity},
		{"key of another encryption", func(b []byte) []byte { return b }, l.Descriptor, keys2[l2.Descriptor.Digest], ErrIntegrity},
		{"key names other plaintext", func(b []byte) []byte { return b }, l.Descriptor, otherDigest, ErrIntegrity},
		{"no key", func(b []byte) []byte { return b }, l.Descriptor, nil, ErrNoKey},
		{"no pubopts", func(b []byte) []byte { return b }, noPub, key, ErrUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "blob"), tc.ct(bytes.Clone(ct)), 0o600); err != nil {
				t.Fatal(err)
			}
			root, err := os.OpenRoot(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			pt, err := DecryptFile(context.Background(), root, "blob", "plain", tc.desc, tc.key)
			_, statErr := os.Stat(filepath.Join(dir, "plain"))
			if tc.is == nil {
				if err != nil {
					t.Fatal(err)
				}
				got, _ := os.ReadFile(filepath.Join(dir, "plain"))
				fi, _ := os.Stat(filepath.Join(dir, "plain"))
				if !bytes.Equal(got, plain) || pt.Digest != digest.FromBytes(plain) || fi.Mode().Perm() != 0o600 {
					t.Errorf("plaintext %d bytes %s mode %v", len(got), pt.Digest, fi.Mode())
				}
				return
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("error %v, want %v", err, tc.is)
			}
			if !errors.Is(statErr, os.ErrNotExist) {
				t.Errorf("a plaintext file remains after a refusal (%v)", statErr)
			}
		})
	}
}

// TestKeyNeverPrinted: the key's bytes appear in no format of a LayerKey
// or Keys, and in no error.
func TestKeyNeverPrinted(t *testing.T) {
	k := newKeyPair(t, "p256")
	l, ct, m := encrypt(t, []byte("w"), k.recipient(t))
	keys, err := UnwrapKeys(context.Background(), m, k.priv)
	if err != nil {
		t.Fatal(err)
	}
	key := keys[l.Descriptor.Digest]
	var priv struct {
		Sym []byte `json:"symkey"`
	}
	if err := json.Unmarshal(key, &priv); err != nil || len(priv.Sym) != 32 {
		t.Fatalf("key: %v", err)
	}
	secrets := []string{hex.EncodeToString(priv.Sym), base64.StdEncoding.EncodeToString(priv.Sym), string(priv.Sym), string(key)}
	ct[0] ^= 1
	_, decErr := Decrypt(context.Background(), l.Descriptor, key, bytes.NewReader(ct), io.Discard)
	printed := []string{
		fmt.Sprintf("%v %s %x %X %q %#v %+v", key, key, key, key, key, key, key),
		fmt.Sprintf("%v %#v", keys, keys),
		fmt.Sprint(key), key.String(), key.LogValue().String(), decErr.Error(),
	}
	for _, p := range printed {
		for _, s := range secrets {
			if strings.Contains(p, s) {
				t.Errorf("printed key material: %q", p)
			}
		}
	}
}

func TestChangedBetweenPasses(t *testing.T) {
	k := newKeyPair(t, "p256")
	content := []byte("first version of the file")
	open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(bytes.Clone(content))), nil }
	l, err := EncryptLayer(context.Background(), plainLayer(content), open, []Recipient{k.recipient(t)})
	if err != nil {
		t.Fatal(err)
	}
	content[0] = 'F'
	rc, err := l.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadAll(rc); err == nil || !strings.Contains(err.Error(), "changed between the two passes") {
		t.Errorf("second pass over a changed file: %v", err)
	}
}

func TestParseRecipient(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pkix := func(pub any) []byte {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	k := newKeyPair(t, "p256")
	for _, tc := range []struct {
		name, arg, want string
		is              error
	}{
		{"ec", "jwe:" + write("ec.pem", k.pub), "", nil},
		{"rsa", "jwe:" + write("rsa.pem", newKeyPair(t, "rsa").pub), "", nil},
		{"no scheme", write("x.pem", k.pub), "want jwe:", nil},
		{"pgp", "pgp:alice@example.com", "only jwe:", ErrUnsupported},
		{"missing file", "jwe:" + filepath.Join(dir, "none.pem"), "no such file", nil},
		{"private key", "jwe:" + write("priv.pem", k.priv), `"PRIVATE KEY"`, ErrUnsupported},
		{"rsa 1024", "jwe:" + write("small.pem", pkix(&small.PublicKey)), "1024 bits", ErrUnsupported},
		{"p224", "jwe:" + write("p224.pem", pkix(&p224.PublicKey)), "P-224", ErrUnsupported},
		{"ed25519", "jwe:" + write("ed.pem", pkix(edPub)), "ed25519", ErrUnsupported},
		{"not pem", "jwe:" + write("junk", []byte("junk")), "not a PEM", ErrUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseRecipient(tc.arg)
			if tc.want == "" {
				if err != nil || r.String() != tc.arg {
					t.Fatalf("%v (%q)", err, r)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}
