package modelspec

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/format/gitignore"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/modelattest/modelattest/internal/filetype"
)

// File is one regular file of a model directory, to become one raw layer.
type File struct {
	// Path is the file's path relative to the model directory, slash-separated.
	Path string
	// OSPath is where the file is on disk.
	OSPath string
	// Kind decides the layer media type.
	Kind Kind
	// Size is the file's size in bytes when it was scanned.
	Size int64
	// Mode holds the file's permission bits.
	Mode fs.FileMode
}

// ScanOption changes how Scan reads a model directory.
type ScanOption func(*scanOptions)

type scanOptions struct {
	kinds             []kindRule
	exclude           []string
	noDefaultExcludes bool
	dereference       bool
}

type kindRule struct {
	glob string
	kind Kind
}

// WithKind makes files whose path or base name matches glob (path.Match
// syntax) the given kind, overriding the well-known names. Later rules win.
func WithKind(glob string, k Kind) ScanOption {
	return func(o *scanOptions) { o.kinds = append(o.kinds, kindRule{glob, k}) }
}

// WithExclude leaves out what the gitignore line pattern matches, as if it
// were a line of a .modelattestignore file at the root: "*.bin" anywhere,
// "/eval" only at the root, "cache/" only folders, "!keep.bin" takes a file
// back. Later patterns win.
func WithExclude(pattern string) ScanOption {
	return func(o *scanOptions) { o.exclude = append(o.exclude, pattern) }
}

// WithoutDefaultExcludes packs the files DefaultExcludes would leave out
// (version control, caches, OS litter), as before they existed.
func WithoutDefaultExcludes() ScanOption {
	return func(o *scanOptions) { o.noDefaultExcludes = true }
}

// WithDereference packs the file a symlink points to, as a regular file of
// the model, wherever the target lies. A Hugging Face cache snapshot is
// such a folder: every file is a link into ../../blobs/. Links to folders
// are still refused: they could loop, and a model is its files.
func WithDereference() ScanOption {
	return func(o *scanOptions) { o.dereference = true }
}

// DefaultExcludes are left out of every model unless WithoutDefaultExcludes
// is given: version-control data, editor, notebook and Python caches, OS
// litter, and the files that describe a pack or sign it (an OpenSSF model
// signature beside the files cannot sign itself). Gitignore syntax.
var DefaultExcludes = []string{
	".git/", ".gitattributes", ".gitignore", ".gitmodules", ".hg/", ".svn/",
	".DS_Store", "Thumbs.db", "__pycache__/", "*.pyc", ".ipynb_checkpoints/",
	".cache/", ".huggingface/", IgnoreFile, "model.sig",
}

// IgnoreFile is the name of a file, in the model folder or any folder
// below it, whose lines (gitignore syntax) say what Scan leaves out.
const IgnoreFile = ".modelattestignore"

// ErrSymlink is returned for a symlink in a model folder scanned without
// WithDereference.
var ErrSymlink = errors.New("is a symlink")

// Scan lists the regular files below root in byte order of their path,
// leaving out DefaultExcludes, the patterns of IgnoreFile files and
// WithExclude patterns. Symlinks (unless WithDereference) and special files
// are refused: a model is its bytes, and a link would make the artifact
// depend on what lies outside the directory.
func Scan(root string, opts ...ScanOption) ([]File, error) {
	var o scanOptions
	for _, opt := range opts {
		opt(&o)
	}
	for _, r := range o.kinds {
		if !r.kind.Valid() {
			return nil, fmt.Errorf("kind %q for %q: want one of %s", r.kind, r.glob, kindList())
		}
		if _, err := path.Match(r.glob, ""); err != nil {
			return nil, fmt.Errorf("kind pattern %q: %w", r.glob, err)
		}
	}
	info, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("model directory: %w", err)
	}
	if li, err := os.Lstat(root); err == nil && li.Mode()&fs.ModeSymlink != 0 {
		// The folder named is a link to the model folder (a "latest"
		// link, a cache snapshot): walk the folder it names.
		if root, err = filepath.EvalSymlinks(root); err != nil {
			return nil, fmt.Errorf("model directory: %w", err)
		}
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("model directory %s: not a directory", root)
	}
	var patterns []gitignore.Pattern
	if !o.noDefaultExcludes {
		for _, l := range DefaultExcludes {
			patterns = append(patterns, gitignore.ParsePattern(l, nil))
		}
	}
	// Patterns given by the caller win over the ignore files: they are read
	// last (the matcher lets the last matching pattern decide).
	var given []gitignore.Pattern
	for _, l := range o.exclude {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			given = append(given, gitignore.ParsePattern(l, nil))
		}
	}
	excluded := func(parts []string, isDir bool) bool {
		return gitignore.NewMatcher(append(patterns[:len(patterns):len(patterns)], given...)).Match(parts, isDir)
	}
	var files []File
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		var parts []string
		if rel != "." {
			parts = strings.Split(rel, "/")
			if excluded(parts, d.IsDir()) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		if d.IsDir() {
			// A folder's ignore file applies below it, as .gitignore does.
			ps, err := readIgnoreFile(filepath.Join(p, IgnoreFile), parts)
			if err != nil {
				return err
			}
			patterns = append(patterns, ps...)
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			if !o.dereference {
				return fmt.Errorf("model file %q %w: pack what links point to with --dereference (WithDereference), as a Hugging Face cache snapshot needs", rel, ErrSymlink)
			}
			if fi, err = os.Stat(p); err != nil {
				return fmt.Errorf("model file %q: link target: %w", rel, err)
			}
			if !fi.Mode().IsRegular() {
				return fmt.Errorf("model file %q: links to a %s, not a regular file", rel, filetype.Name(fi.Mode()))
			}
		} else if !d.Type().IsRegular() {
			return fmt.Errorf("model file %q: a %s, not a regular file", rel, filetype.Name(d.Type()))
		}
		if _, err := CleanPath(rel); err != nil {
			return err
		}
		kind := KindOf(rel)
		for _, r := range o.kinds {
			if matchAny(r.glob, rel) {
				kind = r.kind
			}
		}
		files = append(files, File{Path: rel, OSPath: p, Kind: kind, Size: fi.Size(), Mode: fi.Mode().Perm()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", root, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("model directory %s: no files to pack", root)
	}
	// One layer per file: a model pull would refuse, so refuse it here,
	// before anything is hashed or sent.
	if len(files) > MaxLayers {
		return nil, fmt.Errorf("model directory %s has %d files: %w: a model has at most MaxLayers (%d) layers, one per file; exclude files or archive a folder of many small ones", root, len(files), ErrLimit, MaxLayers)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	if err := checkCollisions(files); err != nil {
		return nil, err
	}
	return files, nil
}

func matchAny(glob, p string) bool {
	if ok, _ := path.Match(glob, p); ok {
		return true
	}
	ok, _ := path.Match(glob, path.Base(p))
	return ok
}

// readIgnoreFile parses an ignore file whose patterns apply below the
// folder domain; a missing file has none.
func readIgnoreFile(name string, domain []string) ([]gitignore.Pattern, error) {
	b, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ignore file: %w", err)
	}
	var ps []gitignore.Pattern
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimRight(l, "\r")
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			continue
		}
		ps = append(ps, gitignore.ParsePattern(l, slices.Clone(domain)))
	}
	return ps, nil
}

func kindList() string {
	s := make([]string, len(Kinds))
	for i, k := range Kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

func checkCollisions(files []File) error {
	s := newPathSet()
	for _, f := range files {
		if err := s.add(f.Path); err != nil {
			return err
		}
	}
	return nil
}

// FileMetadata is the org.cncf.model.file.metadata+json annotation.
type FileMetadata struct {
	Name     string    `json:"name"`
	Mode     uint32    `json:"mode"`
	Uid      int       `json:"uid"`
	Gid      int       `json:"gid"`
	Size     int64     `json:"size"`
	ModTime  time.Time `json:"mtime"`
	Typeflag byte      `json:"typeflag"`
}

// Layer is the descriptor of f as a raw layer with digest d. Owner and
// modification time are normalised (root, the artifact's creation time) so
// the same directory packs to the same digest on any machine.
func (f File) Layer(d digest.Digest, created time.Time) (ocispec.Descriptor, error) {
	if created.IsZero() {
		created = time.Unix(0, 0)
	}
	md, err := json.Marshal(FileMetadata{
		Name: path.Base(f.Path), Mode: uint32(f.Mode.Perm()), Size: f.Size,
		ModTime: created.UTC(), Typeflag: '0',
	})
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return ocispec.Descriptor{
		MediaType: f.Kind.MediaType(),
		Digest:    d,
		Size:      f.Size,
		Annotations: map[string]string{
			AnnotationFilepath:     f.Path,
			AnnotationFileMetadata: string(md),
			AnnotationTitle:        f.Path,
		},
	}, nil
}

// Artifact is a packed model: its manifest and config, encoded, with their
// descriptors.
type Artifact struct {
	Manifest     ocispec.Manifest
	ManifestJSON []byte
	ManifestDesc ocispec.Descriptor
	ConfigJSON   []byte
	ConfigDesc   ocispec.Descriptor
}

// NewArtifact assembles the config and manifest of a model from its layers
// (in the order Scan returned the files). created zero omits every time stamp.
func NewArtifact(meta Metadata, created time.Time, layers []ocispec.Descriptor, annotations map[string]string) (*Artifact, error) {
	if len(layers) == 0 {
		// ECR, among others, refuses a manifest with no layers.
		return nil, fmt.Errorf("model has no layers")
	}
	diffIDs := make([]digest.Digest, len(layers))
	for i, l := range layers {
		diffIDs[i] = l.Digest
	}
	cfgJSON, err := MarshalConfig(NewConfig(meta, created, diffIDs))
	if err != nil {
		return nil, err
	}
	cfgDesc := ocispec.Descriptor{MediaType: MediaTypeConfig, Digest: digest.FromBytes(cfgJSON), Size: int64(len(cfgJSON))}
	ann := map[string]string{}
	for k, v := range annotations {
		ann[k] = v
	}
	if !created.IsZero() {
		ann[AnnotationCreated] = created.UTC().Format(time.RFC3339)
	}
	if len(ann) == 0 {
		ann = nil
	}
	m := ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: ArtifactType,
		Config:       cfgDesc,
		Layers:       layers,
		Annotations:  ann,
	}
	mJSON, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return &Artifact{
		Manifest: m, ManifestJSON: mJSON,
		ManifestDesc: ocispec.Descriptor{
			MediaType: ocispec.MediaTypeImageManifest, ArtifactType: ArtifactType,
			Digest: digest.FromBytes(mJSON), Size: int64(len(mJSON)),
		},
		ConfigJSON: cfgJSON, ConfigDesc: cfgDesc,
	}, nil
}

// WithLayers is the artifact with the same config and manifest annotations
// but other layers in place of its own, one for one and in the same order:
// the encrypted layers of the same files. The config's diffIds keep naming
// the plaintext, as an OCI image config names the uncompressed layer
// whatever the layer's encoding, so a pull checks each decrypted file
// against the config.
func (a *Artifact) WithLayers(layers []ocispec.Descriptor) (*Artifact, error) {
	if len(layers) != len(a.Manifest.Layers) {
		return nil, fmt.Errorf("%d layers for a model of %d files", len(layers), len(a.Manifest.Layers))
	}
	m := a.Manifest
	m.Layers = layers
	mJSON, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return &Artifact{
		Manifest: m, ManifestJSON: mJSON,
		ManifestDesc: ocispec.Descriptor{
			MediaType: ocispec.MediaTypeImageManifest, ArtifactType: m.ArtifactType,
			Digest: digest.FromBytes(mJSON), Size: int64(len(mJSON)),
		},
		ConfigJSON: a.ConfigJSON, ConfigDesc: a.ConfigDesc,
	}, nil
}
