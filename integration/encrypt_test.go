package integration

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelattest/modelattest/internal/regtest"
)

// writeRecipientKey writes a key pair for layer encryption (PKIX public,
// PKCS#8 private PEM) as PREFIX.pub.pem and PREFIX.pem.
func writeRecipientKey(t *testing.T, prefix, kind string) (pub, priv string) {
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
	spki, _ := x509.MarshalPKIXPublicKey(k.Public())
	pub, priv = prefix+".pub.pem", prefix+".pem"
	os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}), 0o644)
	os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), 0o600)
	return pub, priv
}

// flipStoredBlob flips one byte of the blob hex in a registry's storage
// folder, as a compromised registry or disk would.
func flipStoredBlob(t *testing.T, root, hex string) {
	t.Helper()
	found := false
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "data" && filepath.Base(filepath.Dir(p)) == hex {
			b, err := os.ReadFile(p)
			if err != nil || len(b) == 0 {
				t.Fatalf("blob %s: %v", hex, err)
			}
			b[len(b)/2] ^= 0x40
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			found = true
		}
		return nil
	})
	if !found {
		t.Fatalf("blob %s not found under %s", hex, root)
	}
}

// TestEncryptedWeights pushes a model encrypted for two recipients (EC and
// RSA) with a model-signing statement made from the plaintext, signs it,
// and checks what each party gets: the key holders the identical files
// (verified by policy, and by model_signing's rules on the decrypted
// folder), everyone else a refusal with nothing written, oras only
// ciphertext; a flipped ciphertext byte in the registry is refused.
func TestEncryptedWeights(t *testing.T) {
	orasBin := regtest.Tool(t, "oras")
	cosign := regtest.Tool(t, "cosign-v3")
	for _, reg := range []struct {
		name  string
		start func(t *testing.T, dir string) string
	}{
		{"embedded", func(t *testing.T, dir string) string { return regtest.Embedded(t, dir) }},
		{"distribution", func(t *testing.T, dir string) string { return regtest.DistributionAt(t, dir, "") }},
	} {
		t.Run(reg.name, func(t *testing.T) {
			storage := t.TempDir()
			h := reg.start(t, storage)
			keys := keyDir(t)
			cosignKey := filepath.Join(keys, "cosign.key")
			ecPub, ecPriv := writeRecipientKey(t, filepath.Join(keys, "broker"), "ec")
			rsaPub, rsaPriv := writeRecipientKey(t, filepath.Join(keys, "operator"), "rsa")
			strangerPub, strangerPriv := writeRecipientKey(t, filepath.Join(keys, "stranger"), "ec")
			policy := filepath.Join(keys, "policy.yaml")
			os.WriteFile(policy, []byte(`version: 1
trust:
  release: {key: cosign.pub}
models:
  - match: ["**"]
    signatures: {signers: [release]}
    attestations:
      - predicateType: https://model_signing/signature/v1.0
        signers: [release]
`), 0o644)

			model := regtest.ModelDir(t, 256<<10)
			ref := h + "/models/secret:v1"
			var pushed struct {
				Manifest struct {
					Digest string `json:"digest"`
				} `json:"manifest"`
				Blobs []struct {
					Status string `json:"status"`
					Sent   int64  `json:"sentBytes"`
					Size   int64  `json:"size"`
				} `json:"blobs"`
				Encrypted    bool `json:"encrypted"`
				ModelSigning *struct {
					Digest string `json:"digest"`
				} `json:"modelSigning"`
			}
			out := ma(t, "push", "--plain-http", "--no-progress", "--format", "json", ref, model,
				"--encrypt-recipient", "jwe:"+ecPub, "--encrypt-recipient", "jwe:"+rsaPub, "--model-signing", "--key", cosignKey)
			if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &pushed); err != nil || !pushed.Encrypted || pushed.ModelSigning == nil {
				t.Fatalf("push --format json: %v\n%s", err, out)
			}
			digest := pushed.Manifest.Digest
			if len(pushed.Blobs) != 6 {
				t.Errorf("push reports %d blobs, want the 6 files", len(pushed.Blobs))
			}
			for _, b := range pushed.Blobs {
				if b.Status != "uploaded" || b.Sent != b.Size {
					t.Errorf("an encrypted blob %s with %d of %d bytes sent: each is new, so uploaded whole", b.Status, b.Sent, b.Size)
				}
			}
			pinned := h + "/models/secret@" + digest
			ma(t, "sign", "--plain-http", "--key", cosignKey, pinned)
			// An unsigned substitute, encrypted to someone else: the policy
			// refuses it before any key is unwrapped (verification failed,
			// not "could not run").
			substitute := h + "/models/secret:substitute"
			ma(t, "push", "--plain-http", "--no-progress", substitute, model, "--encrypt-recipient", "jwe:"+strangerPub)

			var m struct {
				Config struct {
					MediaType string `json:"mediaType"`
				} `json:"config"`
				Layers []struct {
					MediaType   string            `json:"mediaType"`
					Digest      string            `json:"digest"`
					Annotations map[string]string `json:"annotations"`
				} `json:"layers"`
			}
			if err := json.Unmarshal([]byte(regtest.Run(t, orasBin, "manifest", "fetch", "--plain-http", pinned)), &m); err != nil {
				t.Fatal(err)
			}
			if m.Config.MediaType != "application/vnd.cncf.model.config.v1+json" {
				t.Errorf("config media type %q: the config must stay plain", m.Config.MediaType)
			}
			weights := ""
			for _, l := range m.Layers {
				if !strings.HasSuffix(l.MediaType, ".raw+encrypted") || l.Annotations["org.opencontainers.image.enc.keys.jwe"] == "" || l.Annotations["org.opencontainers.image.enc.pubopts"] == "" {
					t.Errorf("layer %s: media type %q, annotations %v", l.Digest, l.MediaType, l.Annotations)
				}
				if l.Annotations["org.cncf.model.filepath"] == "model.safetensors" {
					weights = strings.TrimPrefix(l.Digest, "sha256:")
				}
			}

			for _, tc := range []struct {
				name  string
				args  []string
				code  int
				words []string
				same  bool // the output folder holds the model
			}{
				{"verify: signature and plaintext model signing", []string{"verify", "--plain-http", "--policy", policy, pinned}, 0, []string{"PASS"}, false},
				{"pull, EC recipient, policy and model.sig", []string{"pull", "--plain-http", "--no-progress", "--policy", policy, "--model-signature", "--decryption-key", ecPriv, "-o", "OUT", ref}, 0, nil, true},
				{"pull, RSA recipient", []string{"pull", "--plain-http", "--no-progress", "--insecure-skip-verify", "--decryption-key", rsaPriv, "-o", "OUT", pinned}, 0, nil, true},
				{"pull without a key", []string{"pull", "--plain-http", "--no-progress", "--policy", policy, "-o", "OUT", ref}, 1, []string{"is encrypted", "--decryption-key", "nothing was written"}, false},
				{"pull of an unsigned substitute encrypted to another recipient", []string{"pull", "--plain-http", "--no-progress", "--policy", policy, "--decryption-key", ecPriv, "-o", "OUT", substitute}, 3, []string{"FAIL"}, false},
				{"pull with a stranger's key", []string{"pull", "--plain-http", "--no-progress", "--insecure-skip-verify", "--decryption-key", strangerPriv, "-o", "OUT", ref}, 1, []string{"cannot be unwrapped"}, false},
				{"attest --type model-signing from the manifest", []string{"attest", "--plain-http", "--key", cosignKey, "--type", "model-signing", pinned}, 1, []string{"encrypted layers", "--model-signing"}, false},
			} {
				t.Run(tc.name, func(t *testing.T) {
					dir := filepath.Join(t.TempDir(), "model")
					args := append([]string(nil), tc.args...)
					for i, a := range args {
						if a == "OUT" {
							args[i] = dir
						}
					}
					msg, code := maCode(t, args...)
					if code != tc.code {
						t.Fatalf("exit %d, want %d\n%s", code, tc.code, msg)
					}
					for _, w := range tc.words {
						if !strings.Contains(msg, w) {
							t.Errorf("output does not say %q:\n%s", w, msg)
						}
					}
					if strings.Contains(strings.Join(tc.args, " "), "--model-signature") {
						// model_signing's own rules on the decrypted folder:
						// the statement made from the plaintext at push time.
						ma(t, "verify-local", dir, "--signature", filepath.Join(dir, "model.sig"), "--key", filepath.Join(keys, "cosign.pub"))
						os.Remove(filepath.Join(dir, "model.sig"))
					}
					if tc.same {
						regtest.SameContent(t, model, dir)
					} else if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
						t.Errorf("%s exists after a refusal (%v)", dir, err)
					}
				})
			}

			t.Run("cosign verifies the signature on the encrypted manifest", func(t *testing.T) {
				out, err := regtest.RunIn(keys, cosign, "verify", "--key", "cosign.pub", "--insecure-ignore-tlog", "--allow-http-registry",
					"--trusted-root", "trusted_root.json", pinned)
				if err != nil || !strings.Contains(out, digest) {
					t.Fatalf("cosign verify: %v\n%s", err, out)
				}
			})

			t.Run("oras pull yields only ciphertext", func(t *testing.T) {
				dir := filepath.Join(t.TempDir(), "oras")
				regtest.Run(t, orasBin, "pull", "--plain-http", "-o", dir, pinned)
				for _, f := range regtest.Tree(t, model) {
					got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f.Path)))
					if err != nil {
						t.Fatalf("oras wrote no %s: %v", f.Path, err)
					}
					// AES-CTR keeps the length; an empty file stays empty.
					if len(got) != len(f.Data) || (len(got) > 0 && bytes.Equal(got, []byte(f.Data))) {
						t.Errorf("%s: oras wrote %d bytes equal to the plaintext's %d", f.Path, len(got), len(f.Data))
					}
					if len(got) >= 16 && bytes.Contains([]byte(f.Data), got[:16]) {
						t.Errorf("%s: oras's file starts with plaintext", f.Path)
					}
				}
			})

			t.Run("two encrypted pushes differ", func(t *testing.T) {
				again := digestOf(t, ma(t, "push", "--plain-http", "--no-progress", h+"/models/secret:v2", model, "--encrypt-recipient", "jwe:"+ecPub))
				if again == digest {
					t.Fatal("the same folder encrypted twice gave one manifest")
				}
			})

			t.Run("ciphertext byte flipped in the registry", func(t *testing.T) {
				flipStoredBlob(t, storage, weights)
				dir := filepath.Join(t.TempDir(), "model")
				msg, code := maCode(t, "pull", "--plain-http", "--no-progress", "--policy", policy, "--decryption-key", ecPriv, "-o", dir, ref)
				if code != 3 {
					t.Fatalf("exit %d, want 3\n%s", code, msg)
				}
				if !strings.Contains(msg, "model.safetensors") || !strings.Contains(msg, "nothing was written") {
					t.Errorf("refusal does not name the layer or say nothing was written:\n%s", msg)
				}
				if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s exists after a refusal (%v)", dir, err)
				}
			})
		})
	}
}
