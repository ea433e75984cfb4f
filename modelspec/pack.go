package modelspec

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
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
	kinds   []kindRule
	exclude []string
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

// WithExclude leaves out files and directories whose path or base name
// matches glob.
func WithExclude(glob string) ScanOption {
	return func(o *scanOptions) { o.exclude = append(o.exclude, glob) }
}

func matchAny(glob, p string) bool {
	if ok, _ := path.Match(glob, p); ok {
		return true
	}
	ok, _ := path.Match(glob, path.Base(p))
	return ok
}

// Scan lists the regular files below root in byte order of their path.
// Symlinks and special files are refused: a model is its bytes, and a link
// would make the artifact depend on what lies outside the directory.
func Scan(root string, opts ...ScanOption) ([]File, error) {
	var o scanOptions
	for _, opt := range opts {
		opt(&o)
	}
	for _, r := range o.kinds {
		if !r.kind.Valid() {
			return nil, fmt.Errorf("kind %q for %q: want one of %v", r.kind, r.glob, Kinds)
		}
		if _, err := path.Match(r.glob, ""); err != nil {
			return nil, fmt.Errorf("kind pattern %q: %w", r.glob, err)
		}
	}
	info, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("model directory: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("model directory %s: not a directory", root)
	}
	var files []File
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		for _, g := range o.exclude {
			if matchAny(g, rel) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("model file %q: %s is not a regular file", rel, d.Type())
		}
		if _, err := CleanPath(rel); err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
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
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	if err := checkCollisions(files); err != nil {
		return nil, err
	}
	return files, nil
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
