package oras_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	orasgo "oras.land/oras-go/v2"

	"github.com/modelattest/modelattest/encryption"
	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/modelspec"
	"github.com/modelattest/modelattest/oras"
)

// recipientKey makes a key pair and returns the recipient and the PEM
// private key.
func recipientKey(t *testing.T, kind string) (encryption.Recipient, []byte) {
	t.Helper()
	var k crypto.Signer
	var err error
	if kind == "rsa" {
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	p8, _ := x509.MarshalPKCS8PrivateKey(k)
	pub, _ := x509.MarshalPKIXPublicKey(k.Public())
	r, err := encryption.NewRecipient(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	if err != nil {
		t.Fatal(err)
	}
	return r, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})
}

func pushEncrypted(t *testing.T, dst orasgo.Target, dir string, rs ...encryption.Recipient) *oras.EncryptedPush {
	t.Helper()
	res, err := oras.PushEncrypted(context.Background(), dst, "v1", dir, rs, oras.PushOptions{Created: created, Metadata: modelspec.Metadata{Name: "tiny"}})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// manifestAndConfig fetches the model manifest desc and its config.
func manifestAndConfig(t *testing.T, tgt orasgo.Target, desc ocispec.Descriptor) (*ocispec.Manifest, *modelspec.Config) {
	t.Helper()
	m, _, err := oras.FetchManifest(context.Background(), tgt, desc)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := oras.FetchConfig(context.Background(), tgt, m.Config)
	if err != nil {
		t.Fatal(err)
	}
	return m, cfg
}

func TestEncryptedRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		open func(t *testing.T) *oras.Target
		key  string
	}{
		{"embedded registry, EC", func(t *testing.T) *oras.Target { return openRemote(t, regtest.Embedded(t, ""), "models/enc", "") }, "ec"},
		{"oci layout, RSA", layout, "rsa"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			model := regtest.ModelDir(t, 300<<10)
			tgt := tc.open(t)
			r, priv := recipientKey(t, tc.key)
			res := pushEncrypted(t, tgt, model, r)
			m, cfg := manifestAndConfig(t, tgt, res.Manifest)
			for i, l := range m.Layers {
				p := res.Plaintext.Manifest.Layers[i]
				if !encryption.IsEncrypted(l.MediaType) || l.MediaType != p.MediaType+"+encrypted" {
					t.Errorf("layer %d media type %q", i, l.MediaType)
				}
				if cfg.ModelFS.DiffIDs[i] != p.Digest || (l.Size > 0 && l.Digest == p.Digest) {
					t.Errorf("layer %d: diffId %s, plaintext %s, ciphertext %s", i, cfg.ModelFS.DiffIDs[i], p.Digest, l.Digest)
				}
			}
			keys, err := oras.DecryptionKeys(ctx, tgt, res.Manifest, priv)
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "out")
			cache := t.TempDir()
			pulled, err := oras.Pull(ctx, tgt, res.Manifest, out, oras.PullOptions{Decrypt: keys, DigestCacheDir: cache})
			if err != nil {
				t.Fatal(err)
			}
			regtest.SameTree(t, model, out)
			// Where blobs were pulled from is a hint for later pushes: the
			// plaintext is in no registry, so it is never recorded.
			record, _ := os.ReadFile(filepath.Join(cache, "locations.json"))
			for _, f := range pulled.Files {
				b, _ := os.ReadFile(filepath.Join(out, f.Path))
				if f.Digest != digest.FromBytes(b) || !f.Encrypted {
					t.Errorf("%s: reported %s (encrypted %v), file is %s", f.Path, f.Digest, f.Encrypted, digest.FromBytes(b))
				}
				if f.Size > 0 && bytes.Contains(record, []byte(f.Digest.Encoded())) {
					t.Errorf("%s: the plaintext digest is recorded as a blob of the registry", f.Path)
				}
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(out), ".out.modelattest-partial")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("staging folder left after a good pull: %v", err)
			}
			// A second pull finds the plaintext in place.
			again, err := oras.Pull(ctx, tgt, res.Manifest, out, oras.PullOptions{Decrypt: keys})
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range again.Files {
				if f.Status != oras.FilePresent {
					t.Errorf("%s: %s on the second pull, want present", f.Path, f.Status)
				}
			}
		})
	}
}

func TestEncryptedPushIsNotReproducible(t *testing.T) {
	model := regtest.ModelDir(t, 1000)
	r, _ := recipientKey(t, "ec")
	tgt := layout(t)
	a, b := pushEncrypted(t, tgt, model, r), pushEncrypted(t, tgt, model, r)
	if a.Manifest.Digest == b.Manifest.Digest {
		t.Fatal("two encrypted pushes of one folder gave the same manifest: the keys are not fresh")
	}
	for i, blob := range b.Blobs {
		if blob.Status != oras.BlobUploaded || (blob.Size > 0 && blob.Digest == a.Blobs[i].Digest) || blob.Sent != blob.Size {
			t.Errorf("second push, %s: %s, %d of %d bytes sent (first push's digest %s)", blob.Path, blob.Status, blob.Sent, blob.Size, a.Blobs[i].Digest)
		}
	}
	if a.Plaintext.ManifestDesc.Digest != b.Plaintext.ManifestDesc.Digest || a.Plaintext.ConfigDesc.Digest != b.Plaintext.ConfigDesc.Digest {
		t.Error("the plaintext model differs between two pushes of one folder")
	}
}

// TestEncryptedPullRefused: each refusal leaves no output directory and
// no plaintext behind.
func TestEncryptedPullRefused(t *testing.T) {
	ctx := context.Background()
	tgt := layout(t)
	model := regtest.ModelDir(t, 64<<10)
	r, priv := recipientKey(t, "ec")
	res := pushEncrypted(t, tgt, model, r)
	keys, err := oras.DecryptionKeys(ctx, tgt, res.Manifest, priv)
	if err != nil {
		t.Fatal(err)
	}
	m, _, _ := oras.FetchManifest(ctx, tgt, res.Manifest)
	weights := -1
	for i, l := range m.Layers {
		if l.Annotations[modelspec.AnnotationFilepath] == "model.safetensors" {
			weights = i
		}
	}
	otherTgt := layout(t)
	other := pushEncrypted(t, otherTgt, model, r)
	otherKeys, err := oras.DecryptionKeys(ctx, otherTgt, other.Manifest, priv)
	if err != nil {
		t.Fatal(err)
	}
	_, wrongPriv := recipientKey(t, "rsa")

	// An attacker who can write the registry re-encrypts nothing but flips
	// a ciphertext byte and re-digests the manifest: the blob matches its
	// digest, only ocicrypt's HMAC can tell.
	flipped := func() ocispec.Descriptor {
		rc, err := tgt.Fetch(ctx, m.Layers[weights])
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		buf.ReadFrom(rc)
		rc.Close()
		b := buf.Bytes()
		b[len(b)/2] ^= 1
		l, err := orasgo.PushBytes(ctx, tgt, m.Layers[weights].MediaType, b)
		if err != nil {
			t.Fatal(err)
		}
		l.Annotations = m.Layers[weights].Annotations
		m2 := *m
		m2.Layers = append([]ocispec.Descriptor(nil), m.Layers...)
		m2.Layers[weights] = l
		keys[l.Digest] = keys[m.Layers[weights].Digest] // the key the attacker hopes we use
		return tagManifest(t, tgt, m2, "flipped")
	}()
	// A config whose diffIds name other plaintext than the keys decrypt to.
	otherConfig := func() ocispec.Descriptor {
		cfg, _ := oras.FetchConfig(ctx, tgt, m.Config)
		cfg.ModelFS.DiffIDs[weights] = digest.FromString("other weights")
		b, _ := json.Marshal(cfg)
		c, err := orasgo.PushBytes(ctx, tgt, modelspec.MediaTypeConfig, b)
		if err != nil {
			t.Fatal(err)
		}
		m2 := *m
		m2.Config = c
		return tagManifest(t, tgt, m2, "other-config")
	}()
	missing := encryption.Keys{}
	for d, k := range keys {
		if d != m.Layers[weights].Digest {
			missing[d] = k
		}
	}

	for _, tc := range []struct {
		name  string
		desc  ocispec.Descriptor
		keys  func() (encryption.Keys, error)
		is    error
		words []string
		// fetched: whether layer bytes may be fetched before the refusal.
		fetched bool
	}{
		{"no keys", res.Manifest, func() (encryption.Keys, error) { return nil, nil }, encryption.ErrNoKey, []string{"is encrypted", "nothing was written"}, false},
		{"one key missing", res.Manifest, func() (encryption.Keys, error) { return missing, nil }, encryption.ErrNoKey, []string{`"model.safetensors"`, "is encrypted"}, false},
		{"wrong private key", res.Manifest, func() (encryption.Keys, error) { return oras.DecryptionKeys(ctx, tgt, res.Manifest, wrongPriv) }, encryption.ErrUnwrap, []string{"cannot be unwrapped"}, false},
		{"keys of another push of the same folder", res.Manifest, func() (encryption.Keys, error) { return otherKeys, nil }, encryption.ErrNoKey, nil, false},
		{"ciphertext flipped, manifest re-digested", flipped, func() (encryption.Keys, error) { return keys, nil }, oras.ErrIntegrity, []string{"HMAC", "nothing was written"}, true},
		{"config names other plaintext", otherConfig, func() (encryption.Keys, error) { return keys, nil }, oras.ErrIntegrity, []string{"diffIds"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			out := filepath.Join(parent, "out")
			keys, err := tc.keys()
			src := &layerCounter{Target: tgt}
			if err == nil {
				_, err = oras.Pull(ctx, src, tc.desc, out, oras.PullOptions{Decrypt: keys})
			}
			if !tc.fetched && src.layers.Load() > 0 {
				t.Errorf("%d layers fetched before the refusal", src.layers.Load())
			}
			if !errors.Is(err, tc.is) {
				t.Fatalf("error %v, want %v", err, tc.is)
			}
			for _, w := range tc.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("output directory exists after a refused pull (%v)", err)
			}
			// Nothing decrypted from the flipped blob remains staged.
			filepath.WalkDir(parent, func(p string, d os.DirEntry, err error) error {
				if strings.Contains(p, ".part-") {
					t.Errorf("partial file left: %s", p)
				}
				return nil
			})
		})
	}
}

// layerCounter counts the fetches of encrypted layers.
type layerCounter struct {
	*oras.Target
	layers atomic.Int32
}

func (c *layerCounter) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	if encryption.IsEncrypted(desc.MediaType) {
		c.layers.Add(1)
	}
	return c.Target.Fetch(ctx, desc)
}

func tagManifest(t *testing.T, dst orasgo.Target, m ocispec.Manifest, tag string) ocispec.Descriptor {
	t.Helper()
	b, _ := json.Marshal(m)
	d, err := orasgo.TagBytes(context.Background(), dst, ocispec.MediaTypeImageManifest, b, tag)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestEncryptedPullResumes: plaintext that a failed pull decrypted and
// verified into its staging folder is reused by the next pull (checked
// again against its digest), and never placed by the failed one.
func TestEncryptedPullResumes(t *testing.T) {
	ctx := context.Background()
	tgt := layout(t)
	r, priv := recipientKey(t, "ec")
	res := pushEncrypted(t, tgt, regtest.ModelDir(t, 64<<10), r)
	keys, err := oras.DecryptionKeys(ctx, tgt, res.Manifest, priv)
	if err != nil {
		t.Fatal(err)
	}
	m, _, _ := oras.FetchManifest(ctx, tgt, res.Manifest)
	// The fourth file in manifest order (model.safetensors) is damaged,
	// re-digested so that only its HMAC fails.
	rc, err := tgt.Fetch(ctx, m.Layers[3])
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	buf.ReadFrom(rc)
	rc.Close()
	buf.Bytes()[0] ^= 1
	bad, err := orasgo.PushBytes(ctx, tgt, m.Layers[3].MediaType, buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	bad.Annotations = m.Layers[3].Annotations
	keys[bad.Digest] = keys[m.Layers[3].Digest]
	m2 := *m
	m2.Layers = append([]ocispec.Descriptor(nil), m.Layers...)
	m2.Layers[3] = bad
	damaged := tagManifest(t, tgt, m2, "damaged")

	out := filepath.Join(t.TempDir(), "out")
	// One at a time, in manifest order: the three files before the damaged
	// one are decrypted and verified before it fails.
	if _, err := oras.Pull(ctx, tgt, damaged, out, oras.PullOptions{Decrypt: keys, Concurrency: 1}); !errors.Is(err, oras.ErrIntegrity) {
		t.Fatalf("damaged pull: %v", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("output directory after a failed pull: %v", err)
	}
	pulled, err := oras.Pull(ctx, tgt, res.Manifest, out, oras.PullOptions{Decrypt: keys, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	resumed := 0
	for _, f := range pulled.Files {
		switch {
		case f.Path == "model.safetensors" && f.Status != oras.FileDownloaded:
			t.Errorf("the file that failed its HMAC is %s, want downloaded afresh", f.Status)
		case f.Status == oras.FileResumed:
			resumed++
		}
	}
	// At least the three before it; those after may have finished too.
	if resumed < 3 {
		t.Errorf("%d files resumed from the staging folder, want at least 3: %+v", resumed, pulled.Files)
	}
	for _, f := range pulled.Files {
		b, _ := os.ReadFile(filepath.Join(out, f.Path))
		if digest.FromBytes(b) != f.Digest {
			t.Errorf("%s does not hash to %s", f.Path, f.Digest)
		}
	}
}
