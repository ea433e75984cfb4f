package modelspec

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ErrUnsafePath is wrapped by every error that refuses a file name.
var ErrUnsafePath = errors.New("unsafe path")

// CleanPath checks that p is a relative, slash-separated path that stays
// inside the directory it is unpacked to, and returns it. It refuses rather
// than repairs: a name that needs cleaning was not written by an honest packer.
func CleanPath(p string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w %q: %s", ErrUnsafePath, p, why)
	}
	switch {
	case p == "":
		return bad("empty")
	case !utf8.ValidString(p):
		return bad("not UTF-8")
	case strings.ContainsRune(p, 0):
		return bad("contains NUL")
	case strings.HasPrefix(p, "/"):
		return bad("absolute")
	case strings.Contains(p, `\`):
		return bad("contains a backslash")
	case len(p) >= 2 && p[1] == ':':
		return bad("has a drive letter")
	}
	for _, c := range strings.Split(p, "/") {
		switch c {
		case "..":
			return bad("escapes the directory with ..")
		case ".", "":
			return bad("is not canonical")
		}
	}
	return p, nil
}

// pathSet finds duplicate paths, case-folding collisions (two names that are
// one file on macOS or Windows) and a file that is also another's directory.
type pathSet struct {
	files map[string]string // folded -> original
	dirs  map[string]string
}

func newPathSet() *pathSet {
	return &pathSet{files: map[string]string{}, dirs: map[string]string{}}
}

func (s *pathSet) add(p string) error {
	f := strings.ToLower(p)
	if prev, ok := s.files[f]; ok {
		if prev == p {
			return fmt.Errorf("%w %q: duplicate path", ErrUnsafePath, p)
		}
		return fmt.Errorf("%w %q: collides with %q when case is folded", ErrUnsafePath, p, prev)
	}
	if prev, ok := s.dirs[f]; ok {
		return fmt.Errorf("%w %q: is also the directory of %q", ErrUnsafePath, p, prev)
	}
	for d := path.Dir(f); d != "."; d = path.Dir(d) {
		if prev, ok := s.files[d]; ok {
			return fmt.Errorf("%w %q: its directory is the file %q", ErrUnsafePath, p, prev)
		}
		if _, ok := s.dirs[d]; !ok {
			s.dirs[d] = p
		}
	}
	s.files[f] = p
	return nil
}

// Entry is one layer of a model artifact, as it will be unpacked.
type Entry struct {
	// Layer is the layer's descriptor; its bytes must hash to Layer.Digest.
	Layer ocispec.Descriptor
	// Path is the file's relative path for a raw layer, or the annotated
	// path of an archive layer (informational; its members carry their own).
	Path string
	// Kind is what the layer holds.
	Kind Kind
	// Mode is the permission bits a raw layer's file gets.
	Mode   fs.FileMode
	format layerFormat
}

// Archive reports whether the layer is a tar archive to extract rather than
// one raw file.
func (e Entry) Archive() bool { return e.format != formatRaw }

// Format names the layer encoding: raw, tar, tar+gzip or tar+zstd.
func (e Entry) Format() string { return e.format.String() }

// Plan reads a model manifest and says how to unpack it, refusing unsafe or
// colliding paths before a byte is written. Layers that are not model files
// (for example an unknown media type) are an error: silently leaving out a
// file would make the unpacked model differ from the signed one.
func Plan(m ocispec.Manifest) ([]Entry, error) {
	if len(m.Layers) == 0 {
		return nil, fmt.Errorf("manifest has no layers")
	}
	set := newPathSet()
	var entries []Entry
	for i, l := range m.Layers {
		kind, format, ok := parseLayerMediaType(l.MediaType)
		if !ok {
			return nil, fmt.Errorf("layer %d (%s): media type %q is not a model layer", i, l.Digest, l.MediaType)
		}
		if err := l.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		if l.Size < 0 {
			return nil, fmt.Errorf("layer %d (%s): negative size", i, l.Digest)
		}
		p := l.Annotations[AnnotationFilepath]
		if p == "" {
			p = l.Annotations[legacyAnnotationFilepath]
		}
		if p == "" {
			p = l.Annotations[AnnotationTitle]
		}
		e := Entry{Layer: l, Path: p, Kind: kind, Mode: 0o644, format: format}
		if format == formatRaw {
			if p == "" {
				return nil, fmt.Errorf("layer %d (%s): no file path annotation", i, l.Digest)
			}
			if _, err := CleanPath(p); err != nil {
				return nil, fmt.Errorf("layer %d (%s): %w", i, l.Digest, err)
			}
			if err := set.add(p); err != nil {
				return nil, fmt.Errorf("layer %d (%s): %w", i, l.Digest, err)
			}
			if mode, ok := layerMode(l); ok {
				e.Mode = mode
			}
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// layerMode reads the permission bits from the file metadata annotation.
// Only permission bits are kept: setuid, setgid and sticky bits from a
// registry are never applied.
func layerMode(l ocispec.Descriptor) (fs.FileMode, bool) {
	raw := l.Annotations[AnnotationFileMetadata]
	if raw == "" {
		raw = l.Annotations[legacyAnnotationMetadata]
	}
	if raw == "" {
		return 0, false
	}
	var md FileMetadata
	if err := json.Unmarshal([]byte(raw), &md); err != nil || md.Mode == 0 {
		return 0, false
	}
	return fs.FileMode(md.Mode).Perm(), true
}

// Filter keeps the entries whose path or base name matches one of the
// patterns (path.Match syntax), or whose kind is named as "kind:<kind>".
// No patterns keeps everything. Archive layers match on their annotated path
// or kind.
func Filter(entries []Entry, patterns []string) ([]Entry, error) {
	if len(patterns) == 0 {
		return entries, nil
	}
	for _, p := range patterns {
		if k, ok := strings.CutPrefix(p, "kind:"); ok {
			if !Kind(k).Valid() {
				return nil, fmt.Errorf("include %q: unknown kind, want one of %v", p, Kinds)
			}
		} else if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("include %q: %w", p, err)
		}
	}
	var out []Entry
	for _, e := range entries {
		for _, p := range patterns {
			if k, ok := strings.CutPrefix(p, "kind:"); ok {
				if Kind(k) == e.Kind {
					out = append(out, e)
					break
				}
			} else if e.Path != "" && matchAny(p, e.Path) {
				out = append(out, e)
				break
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("include %v: matches no file of the model", patterns)
	}
	return out, nil
}

// Unpacker checks every path a pull writes against every other, across raw
// layers and archive members, so that two layers cannot write one file.
type Unpacker struct {
	mu  sync.Mutex
	set *pathSet
	// MaxArchiveBytes bounds what one archive layer may expand to; zero
	// means 1 TiB. A decompression bomb is refused, not unpacked.
	MaxArchiveBytes int64
}

// NewUnpacker returns an Unpacker for the planned raw entries.
func NewUnpacker(entries []Entry) (*Unpacker, error) {
	u := &Unpacker{set: newPathSet()}
	for _, e := range entries {
		if !e.Archive() {
			if err := u.set.add(e.Path); err != nil {
				return nil, err
			}
		}
	}
	return u, nil
}

// Reserve checks extra file names (written beside the model's files) like
// layer paths and claims them, and returns them in byte order.
func (u *Unpacker) Reserve(files map[string][]byte) ([]string, error) {
	var names []string
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, name := range names {
		if _, err := CleanPath(name); err != nil {
			return nil, err
		}
		if err := u.set.add(name); err != nil {
			return nil, err
		}
	}
	return names, nil
}

// ExtractFunc receives one regular file of an archive layer, with its safe
// path and permission bits; it must consume r.
type ExtractFunc func(p string, mode fs.FileMode, size int64, r io.Reader) error

// Extract reads the archive layer e from r and hands each regular file to
// fn. Links, devices and other special members, and unsafe or colliding
// paths, are refused with an error naming the layer and the member.
func (u *Unpacker) Extract(e Entry, r io.Reader, fn ExtractFunc) error {
	var rd io.Reader = r
	switch e.format {
	case formatTarGzip:
		gz, err := gzip.NewReader(r)
		if err != nil {
			return fmt.Errorf("layer %s: gzip: %w", e.Layer.Digest, err)
		}
		defer gz.Close()
		rd = gz
	case formatTarZstd:
		zr, err := zstd.NewReader(r)
		if err != nil {
			return fmt.Errorf("layer %s: zstd: %w", e.Layer.Digest, err)
		}
		defer zr.Close()
		rd = zr
	case formatRaw:
		return fmt.Errorf("layer %s: not an archive", e.Layer.Digest)
	}
	limit := u.MaxArchiveBytes
	if limit <= 0 {
		limit = 1 << 40
	}
	tr := tar.NewReader(rd)
	var total int64
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("layer %s: tar: %w", e.Layer.Digest, err)
		}
		name := strings.TrimPrefix(h.Name, "./")
		switch h.Typeflag {
		case tar.TypeDir:
			if _, err := CleanPath(strings.TrimSuffix(name, "/")); err != nil && name != "" {
				return fmt.Errorf("layer %s: member %q: %w", e.Layer.Digest, h.Name, err)
			}
			continue
		case tar.TypeReg:
		case tar.TypeXGlobalHeader:
			continue
		default:
			return fmt.Errorf("layer %s: member %q: %w: type %q is not a regular file", e.Layer.Digest, h.Name, ErrUnsafePath, string(h.Typeflag))
		}
		p, err := CleanPath(name)
		if err != nil {
			return fmt.Errorf("layer %s: member %q: %w", e.Layer.Digest, h.Name, err)
		}
		u.mu.Lock()
		err = u.set.add(p)
		u.mu.Unlock()
		if err != nil {
			return fmt.Errorf("layer %s: member %q: %w", e.Layer.Digest, h.Name, err)
		}
		total += h.Size
		if h.Size < 0 || total > limit {
			return fmt.Errorf("layer %s: member %q: archive expands past %d bytes", e.Layer.Digest, h.Name, limit)
		}
		if err := fn(p, fs.FileMode(h.Mode).Perm(), h.Size, tr); err != nil {
			return fmt.Errorf("layer %s: member %q: %w", e.Layer.Digest, h.Name, err)
		}
	}
}
