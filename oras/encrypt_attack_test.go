package oras_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	orasgo "oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"

	"github.com/modelattest/modelattest/encryption"
	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/modelspec"
	"github.com/modelattest/modelattest/oras"
)

// TestEncryptedPullHostileRegistry: a registry that rewrites an encrypted
// model's manifest (and serves it under its new digest, as an unverified
// pull or a registry holding a model signed after the rewrite would) while
// the pull decrypts with the recipient's key from that manifest: every
// rewrite is refused and nothing reaches the output directory. The
// ciphertext byte flip, the missing keys and the config naming other
// plaintext are TestEncryptedPullRefused's.
func TestEncryptedPullHostileRegistry(t *testing.T) {
	ctx := context.Background()
	tgt := layout(t)
	model := regtest.ModelDir(t, 64<<10)
	r, priv := recipientKey(t, "ec")
	res := pushEncrypted(t, tgt, model, r)
	m, cfg := manifestAndConfig(t, tgt, res.Manifest)
	weights, other := -1, -1
	for i, l := range m.Layers {
		switch {
		case !encryption.IsEncrypted(l.MediaType):
		case l.Annotations[modelspec.AnnotationFilepath] == "model.safetensors":
			weights = i
		case other < 0:
			other = i
		}
	}
	if weights < 0 || other < 0 {
		t.Fatalf("the model needs two encrypted layers: %+v", m.Layers)
	}
	// rewrite returns the manifest changed by change, stored under tag.
	rewrite := func(tag string, change func(m *ocispec.Manifest, cfg *modelspec.Config)) ocispec.Descriptor {
		m2 := *m
		m2.Layers = nil
		for _, l := range m.Layers {
			l.Annotations = maps.Clone(l.Annotations)
			m2.Layers = append(m2.Layers, l)
		}
		c2 := *cfg
		c2.ModelFS.DiffIDs = append(c2.ModelFS.DiffIDs[:0:0], cfg.ModelFS.DiffIDs...)
		change(&m2, &c2)
		if m2.Config.MediaType == modelspec.MediaTypeConfig {
			b, _ := json.Marshal(c2)
			m2.Config = pushBlob(t, tgt, modelspec.MediaTypeConfig, b)
		}
		return tagManifest(t, tgt, m2, tag)
	}
	// reblob stores b as the weights' ciphertext, its descriptor re-made.
	reblob := func(m *ocispec.Manifest, b []byte) {
		l := pushBlob(t, tgt, m.Layers[weights].MediaType, b)
		l.Annotations = m.Layers[weights].Annotations
		m.Layers[weights] = l
	}
	cipher := func() []byte {
		rc, err := tgt.Fetch(ctx, m.Layers[weights])
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		var buf bytes.Buffer
		buf.ReadFrom(rc)
		return buf.Bytes()
	}()
	plain, err := os.ReadFile(filepath.Join(model, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name   string
		change func(m *ocispec.Manifest, cfg *modelspec.Config)
		is     error
		words  []string
		// fetched: whether layer bytes may be fetched before the refusal.
		fetched bool
	}{
		{"public options of another layer", func(m *ocispec.Manifest, _ *modelspec.Config) {
			m.Layers[weights].Annotations[encryption.AnnotationPubOpts] = m.Layers[other].Annotations[encryption.AnnotationPubOpts]
		}, oras.ErrIntegrity, []string{"HMAC", "nothing was written"}, true},
		// The ciphertext still matches its digest; the key unwrapped for it
		// is another layer's.
		{"the keys of another layer", func(m *ocispec.Manifest, _ *modelspec.Config) {
			m.Layers[weights].Annotations[encryption.AnnotationKeysJWE] = m.Layers[other].Annotations[encryption.AnnotationKeysJWE]
		}, oras.ErrIntegrity, []string{"diffIds"}, false},
		// Without a model config there are no diffIds: the HMAC, keyed by
		// the symmetric key, is what tells.
		{"the keys of another layer, no model config", func(m *ocispec.Manifest, _ *modelspec.Config) {
			m.Config = pushBlob(t, tgt, ocispec.MediaTypeEmptyJSON, []byte("{}"))
			m.Layers[weights].Annotations[encryption.AnnotationKeysJWE] = m.Layers[other].Annotations[encryption.AnnotationKeysJWE]
		}, oras.ErrIntegrity, []string{"HMAC", "nothing was written"}, true},
		{"the ciphertext truncated", func(m *ocispec.Manifest, _ *modelspec.Config) {
			reblob(m, cipher[:len(cipher)-100])
		}, oras.ErrIntegrity, []string{"HMAC", "nothing was written"}, true},
		// CTR keeps lengths: more ciphertext would be more plaintext than
		// the key's digest names.
		{"the ciphertext longer", func(m *ocispec.Manifest, _ *modelspec.Config) {
			reblob(m, append(bytes.Clone(cipher), make([]byte, 4096)...))
		}, oras.ErrIntegrity, []string{"HMAC", "nothing was written"}, true},
		{"a plain layer of the same file beside the encrypted one", func(m *ocispec.Manifest, cfg *modelspec.Config) {
			l := pushBlob(t, tgt, encryption.PlainMediaType(m.Layers[weights].MediaType), plain)
			l.Annotations = map[string]string{modelspec.AnnotationFilepath: "model.safetensors", ocispec.AnnotationTitle: "model.safetensors"}
			m.Layers = append(m.Layers, l)
			cfg.ModelFS.DiffIDs = append(cfg.ModelFS.DiffIDs, l.Digest)
		}, modelspec.ErrUnsafePath, []string{"duplicate path"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			desc := rewrite(strings.ReplaceAll(tc.name, " ", "-"), tc.change)
			keys, err := oras.DecryptionKeys(ctx, tgt, desc, priv)
			if err != nil {
				t.Fatal(err)
			}
			parent := t.TempDir()
			out := filepath.Join(parent, "out")
			src := &layerCounter{Target: tgt}
			_, err = oras.Pull(ctx, src, desc, out, oras.PullOptions{Decrypt: keys})
			if !errors.Is(err, tc.is) {
				t.Fatalf("error %v, want %v", err, tc.is)
			}
			for _, w := range tc.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if !tc.fetched && src.layers.Load() > 0 {
				t.Errorf("%d layers fetched before the refusal", src.layers.Load())
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("output directory exists after a refused pull (%v)", err)
			}
			filepath.WalkDir(parent, func(p string, d os.DirEntry, err error) error {
				if strings.Contains(p, ".part-") {
					t.Errorf("partial file left: %s", p)
				}
				return nil
			})
		})
	}
}

// pushBlob stores b unless tgt has it, and returns its descriptor.
func pushBlob(t *testing.T, tgt orasgo.Target, mediaType string, b []byte) ocispec.Descriptor {
	t.Helper()
	d := content.NewDescriptorFromBytes(mediaType, b)
	if err := tgt.Push(context.Background(), d, bytes.NewReader(b)); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
		t.Fatal(err)
	}
	return d
}
