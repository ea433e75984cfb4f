package referrers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/modelattest/modelattest/modelspec"
)

// OMSPredicate is the OpenSSF model-signing v1.0 predicate.
type OMSPredicate struct {
	Resources     []OMSResource    `json:"resources"`
	Serialization OMSSerialization `json:"serialization"`
}

// OMSResource is one file of a signed model.
type OMSResource struct {
	Algorithm string `json:"algorithm"`
	Name      string `json:"name"`
	Digest    string `json:"digest"`
}

// OMSSerialization says how the model directory was hashed.
type OMSSerialization struct {
	Method        string   `json:"method"`
	HashType      string   `json:"hash_type"`
	AllowSymlinks bool     `json:"allow_symlinks"`
	IgnorePaths   []string `json:"ignore_paths"`
}

// omsIgnore is what model_signing leaves out of a directory on disk when a
// statement names no ignore paths: git's files, and model.sig, where the
// signature itself is written. It never exempts a layer of an artifact.
var omsIgnore = []string{".git", ".gitattributes", ".github", ".gitignore", "model.sig"}

// OMSStatement builds the model-signing statement of a ModelPack manifest
// from its raw layers alone: a raw layer's digest is its file's sha256, so
// no file is read. Every layer is a resource, whatever its path: a layer
// left out would be a file that lands on disk unsigned. Resources are in
// byte order of path; the subject digest is the sha256 of the concatenated
// resource digests; name is the subject name (model_signing uses the
// directory's name). The statement's ignore_paths are model_signing's
// defaults less any that would hide one of its own resources, so that
// `model_signing verify` on the pulled folder (with model.sig beside the
// files) checks the same file set.
func OMSStatement(m ocispec.Manifest, name string) ([]byte, *OMSPredicate, error) {
	entries, err := modelspec.Plan(m)
	if err != nil {
		return nil, nil, err
	}
	pred := &OMSPredicate{Serialization: OMSSerialization{Method: "files", HashType: "sha256", IgnorePaths: []string{}}}
	for _, e := range entries {
		if e.Encrypted() {
			return nil, nil, fmt.Errorf("%w: layer %q (%s): its digest is the ciphertext's, not the file's, so the statement cannot be made from the manifest; "+
				"make it from the plaintext files when pushing (modelattest push --encrypt-recipient … --model-signing --key …)", ErrEncryptedLayers, e.Path, e.Layer.Digest)
		}
		if e.Archive() {
			return nil, nil, fmt.Errorf("model signing: layer %s is an archive; only raw layers map to files", e.Layer.Digest)
		}
		if e.Layer.Digest.Algorithm() != digest.SHA256 {
			return nil, nil, fmt.Errorf("model signing: layer %q is not sha256", e.Path)
		}
		pred.Resources = append(pred.Resources, OMSResource{Algorithm: "sha256", Name: e.Path, Digest: e.Layer.Digest.Encoded()})
	}
	sort.Slice(pred.Resources, func(i, j int) bool { return pred.Resources[i].Name < pred.Resources[j].Name })
	for _, ig := range omsIgnore {
		hides := false
		for _, r := range pred.Resources {
			hides = hides || isOMSIgnored(r.Name, []string{ig})
		}
		if !hides {
			pred.Serialization.IgnorePaths = append(pred.Serialization.IgnorePaths, ig)
		}
	}
	root, err := omsRoot(pred.Resources)
	if err != nil {
		return nil, nil, err
	}
	pb, err := json.Marshal(pred)
	if err != nil {
		return nil, nil, err
	}
	st, err := NewStatement(root, name, PredicateModelSigning, pb)
	return st, pred, err
}

func omsRoot(res []OMSResource) (digest.Digest, error) {
	h := sha256.New()
	for _, r := range res {
		b, err := hex.DecodeString(r.Digest)
		if err != nil || r.Algorithm != "sha256" || len(b) != sha256.Size {
			return "", fmt.Errorf("model signing: resource %q: bad %s digest %q", r.Name, r.Algorithm, r.Digest)
		}
		h.Write(b)
	}
	return digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(h.Sum(nil))), nil
}

func isOMSIgnored(p string, ignore []string) bool {
	for _, ig := range ignore {
		ig = strings.Trim(filepath.ToSlash(ig), "/")
		if p == ig || strings.HasPrefix(p, ig+"/") {
			return true
		}
	}
	return false
}

// CheckOMS checks a verified model-signing statement against the files
// described (path → sha256 hex): the subject digest must be the root over
// the resources, and the resources must be exactly files, no more, no
// less. Ignore paths play no part here: files is what must be signed, so
// a caller hashing a folder on disk leaves the ignored paths out first
// (HashDir), and a manifest's layers are never left out (CheckOMSManifest).
func CheckOMS(st *Statement, files map[string]string) error {
	return checkOMS(st, files, false)
}

// CheckOMSManifest checks a verified model-signing statement against a
// ModelPack manifest: every layer must be a resource of the statement with
// the layer's digest, and every resource a layer. The statement's
// ignore_paths exempt files on a local disk, never layers: a layer the
// statement does not list would land on disk unsigned.
func CheckOMSManifest(st *Statement, m ocispec.Manifest) error {
	return CheckOMSModel(st, m, nil)
}

// CheckOMSModel is CheckOMSManifest for a model whose layers may be
// encrypted: an encrypted raw layer's file digest is its plaintext's,
// which the ModelPack config cfg names in its diffIds (cfg must be the
// config of m, digest-checked; it may be nil when no layer is encrypted).
// The pull checks every decrypted file against that digest, so what lands
// is what the statement signs.
func CheckOMSModel(st *Statement, m ocispec.Manifest, cfg *modelspec.Config) error {
	files, err := manifestFiles(m, cfg)
	if err != nil {
		return err
	}
	return checkOMS(st, files, true)
}

func checkOMS(st *Statement, files map[string]string, layers bool) error {
	if st.PredicateType != PredicateModelSigning {
		return fmt.Errorf("model signing: predicateType %q", st.PredicateType)
	}
	var pred OMSPredicate
	if err := json.Unmarshal(st.Predicate, &pred); err != nil {
		return fmt.Errorf("model signing: predicate: %w", err)
	}
	if pred.Serialization.Method != "files" || pred.Serialization.HashType != "sha256" {
		return fmt.Errorf("model signing: serialization %s/%s is not supported (want files/sha256)", pred.Serialization.Method, pred.Serialization.HashType)
	}
	root, err := omsRoot(pred.Resources)
	if err != nil {
		return err
	}
	if len(st.Subject) != 1 || !st.Names(root) {
		return fmt.Errorf("model signing: the subject digest is not the digest of the listed resources")
	}
	what := "file"
	if layers {
		what = "layer"
	}
	seen := map[string]bool{}
	for _, r := range pred.Resources {
		if seen[r.Name] {
			return fmt.Errorf("model signing: resource %q listed twice", r.Name)
		}
		seen[r.Name] = true
		got, ok := files[r.Name]
		if !ok {
			if layers {
				return fmt.Errorf("model signing: file %q is signed but the manifest has no such layer", r.Name)
			}
			return fmt.Errorf("model signing: file %q is signed but missing", r.Name)
		}
		if got != r.Digest {
			return fmt.Errorf("model signing: %s %q: digest %s, signed %s", what, r.Name, got, r.Digest)
		}
	}
	var uncovered []string
	for name := range files {
		if !seen[name] {
			uncovered = append(uncovered, name)
		}
	}
	if len(uncovered) == 0 {
		return nil
	}
	sort.Strings(uncovered)
	if layers {
		return fmt.Errorf("model signing: layer %q is not covered by the model-signing statement "+
			"(%d of %d layers unsigned; ignore paths never exempt a layer): re-attest the model "+
			"(modelattest attest --type model-signing) so that its statement covers every layer",
			uncovered[0], len(uncovered), len(files))
	}
	return fmt.Errorf("model signing: file %q is not covered by the signature", uncovered[0])
}

// manifestFiles maps each raw layer's path to its sha256: a raw layer's
// digest is its file's digest, and an encrypted raw layer's file digest is
// the config's diffId for it (cfg: the manifest's config).
func manifestFiles(m ocispec.Manifest, cfg *modelspec.Config) (map[string]string, error) {
	entries, err := modelspec.Plan(m)
	if err != nil {
		return nil, err
	}
	files := map[string]string{}
	for i, e := range entries { // Plan gives one entry per layer, in order
		d := e.Layer.Digest
		if e.Encrypted() {
			if cfg == nil || len(cfg.ModelFS.DiffIDs) != len(m.Layers) {
				return nil, fmt.Errorf("%w: layer %q (%s): its file digest is in the model config, which was not given", ErrEncryptedLayers, e.Path, e.Layer.Digest)
			}
			d = cfg.ModelFS.DiffIDs[i]
		}
		if e.Archive() || d.Algorithm() != digest.SHA256 {
			return nil, fmt.Errorf("model signing: layer %s is not a raw sha256 file", e.Layer.Digest)
		}
		if err := d.Validate(); err != nil {
			return nil, fmt.Errorf("model signing: layer %q: %w", e.Path, err)
		}
		files[e.Path] = d.Encoded()
	}
	return files, nil
}

// notCovered lists what a model-signing statement leaves unsigned when it
// is the only thing a rule binds the model by: it signs file names and
// contents, not the manifest. A signature or any other attestation names
// the manifest digest, which covers all of it.
func (r *Rule) notCovered() []string {
	oms := false
	for _, a := range r.Attestations {
		if a.PredicateType != PredicateModelSigning {
			return nil
		}
		oms = true
	}
	if !oms || r.Signatures != nil {
		return nil
	}
	return []string{"config", "manifest annotations", "layer annotations", "layer media types"}
}

// HashDir hashes every regular file below dir (path → sha256 hex), leaving
// out the paths in ignore (a folder leaves out its whole tree). Symlinks
// and special files are refused, as model_signing does without
// allow_symlinks, with an error wrapping ErrVerification.
func HashDir(dir string, ignore []string) (map[string]string, error) {
	return hashDir(context.Background(), dir, ignore)
}

func hashDir(ctx context.Context, dir string, ignore []string) (map[string]string, error) {
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if isOMSIgnored(rel, ignore) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%w: model signing: %s is not a regular file (symbolic links and special files are refused)", ErrVerification, rel)
		}
		h, err := hashFile(p)
		if err != nil {
			return err
		}
		out[rel] = h
		return nil
	})
	return out, err
}

// VerifyOMSDirectory checks a model directory signed with OpenSSF model
// signing: the bundle in dir/model.sig must verify against v, and its
// statement must list exactly the directory's files (less the paths it
// ignores) with their sha256 digests, as `model_signing verify` does. It
// is VerifyOMSPath with one signer and the default options.
func VerifyOMSDirectory(v *Verifier, dir string) (*Statement, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("model signing: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("model signing: %s is not a directory", dir)
	}
	m, err := openOMSPath(dir, OMSPathOptions{})
	if err != nil {
		return nil, err
	}
	if _, err := m.verify(context.Background(), []*Verifier{v}); err != nil {
		return nil, err
	}
	return m.st, nil
}
