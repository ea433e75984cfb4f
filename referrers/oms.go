package referrers

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
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

// omsIgnore is what model_signing leaves out of a directory by default;
// model.sig is where the signature itself is written.
var omsIgnore = []string{".git", ".gitattributes", ".github", ".gitignore", "model.sig"}

// OMSStatement builds the model-signing statement of a ModelPack manifest
// from its raw layers alone: a raw layer's digest is its file's sha256, so
// no file is read. Resources are in byte order of path; the subject digest
// is the sha256 of the concatenated resource digests; name is the subject
// name (model_signing uses the directory's name).
func OMSStatement(m ocispec.Manifest, name string) ([]byte, *OMSPredicate, error) {
	entries, err := modelspec.Plan(m)
	if err != nil {
		return nil, nil, err
	}
	pred := &OMSPredicate{Serialization: OMSSerialization{Method: "files", HashType: "sha256", IgnorePaths: omsIgnore}}
	for _, e := range entries {
		if e.Archive() {
			return nil, nil, fmt.Errorf("model signing: layer %s is an archive; only raw layers map to files", e.Layer.Digest)
		}
		if e.Layer.Digest.Algorithm() != digest.SHA256 {
			return nil, nil, fmt.Errorf("model signing: layer %q is not sha256", e.Path)
		}
		if isOMSIgnored(e.Path, omsIgnore) {
			continue
		}
		pred.Resources = append(pred.Resources, OMSResource{Algorithm: "sha256", Name: e.Path, Digest: e.Layer.Digest.Encoded()})
	}
	sort.Slice(pred.Resources, func(i, j int) bool { return pred.Resources[i].Name < pred.Resources[j].Name })
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
// described: the subject digest must be the root over the resources, and
// the resources must be exactly files (path → sha256 hex), no more, no less.
func CheckOMS(st *Statement, files map[string]string) error {
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
	seen := map[string]bool{}
	for _, r := range pred.Resources {
		if seen[r.Name] {
			return fmt.Errorf("model signing: resource %q listed twice", r.Name)
		}
		seen[r.Name] = true
		got, ok := files[r.Name]
		if !ok {
			return fmt.Errorf("model signing: file %q is signed but missing", r.Name)
		}
		if got != r.Digest {
			return fmt.Errorf("model signing: file %q: digest %s, signed %s", r.Name, got, r.Digest)
		}
	}
	for name := range files {
		if !seen[name] && !isOMSIgnored(name, pred.Serialization.IgnorePaths) {
			return fmt.Errorf("model signing: file %q is not covered by the signature", name)
		}
	}
	return nil
}

// HashDir hashes every regular file below dir (path → sha256 hex), leaving
// out the paths model_signing ignores. Symlinks are refused, as
// model_signing does without allow_symlinks.
func HashDir(dir string, ignore []string) (map[string]string, error) {
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
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
			return fmt.Errorf("model signing: %s is not a regular file", rel)
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return err
		}
		out[rel] = hex.EncodeToString(h.Sum(nil))
		return nil
	})
	return out, err
}

// OMSIgnorePaths reads the ignore list a model-signing statement carries.
func OMSIgnorePaths(st *Statement) []string {
	var pred OMSPredicate
	if json.Unmarshal(st.Predicate, &pred) != nil {
		return omsIgnore
	}
	return append(pred.Serialization.IgnorePaths, "model.sig")
}

// VerifyOMSDirectory checks a model directory signed with OpenSSF model
// signing: the bundle in dir/model.sig must verify against v, and its
// statement must list exactly the directory's files (less the paths it
// ignores) with their sha256 digests, as `model_signing verify` does.
func VerifyOMSDirectory(v *Verifier, dir string) (*Statement, error) {
	sig, err := os.ReadFile(filepath.Join(dir, "model.sig"))
	if err != nil {
		return nil, fmt.Errorf("model signing: %w", err)
	}
	st, err := v.VerifyStatementOnly(sig)
	if err != nil {
		return nil, err
	}
	files, err := HashDir(dir, OMSIgnorePaths(st))
	if err != nil {
		return nil, err
	}
	if err := CheckOMS(st, files); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrVerification, err)
	}
	return st, nil
}
