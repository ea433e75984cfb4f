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
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ErrUnsafePath is wrapped by every error that refuses a file name.
var ErrUnsafePath = errors.New("unsafe path")

// ErrLimit is wrapped by every error that refuses a manifest for being over
// one of the limits below; the error names the limit.
var ErrLimit = errors.New("over a limit")

// Limits on what a manifest may ask to unpack. They keep the cost of
// judging the worst manifest under the 4 MiB manifest cap linear and small
// (see BenchmarkPlanWorstCase), and no real model comes near them.
const (
	// MaxPathBytes bounds the length of a file path, in bytes.
	MaxPathBytes = 1024
	// MaxPathDepth bounds the number of slash-separated names in a path.
	MaxPathDepth = 64
	// MaxLayers bounds the number of layers of a model manifest.
	MaxLayers = 10000
)

// CleanPath checks that p is a relative, slash-separated path that stays
// inside the directory it is unpacked to, and returns it. It refuses rather
// than repairs: a name that needs cleaning was not written by an honest packer.
// It runs in time linear in len(p), and refuses paths over MaxPathBytes or
// MaxPathDepth.
func CleanPath(p string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w %q: %s", ErrUnsafePath, p, why)
	}
	if len(p) > MaxPathBytes {
		// Quote only the start: the whole name may be megabytes long.
		return "", fmt.Errorf("%w %q…: %w: %d bytes, over MaxPathBytes (%d)", ErrUnsafePath, p[:64], ErrLimit, len(p), MaxPathBytes)
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
	if d := strings.Count(p, "/") + 1; d > MaxPathDepth {
		return "", fmt.Errorf("%w %q: %w: %d names deep, over MaxPathDepth (%d)", ErrUnsafePath, p, ErrLimit, d, MaxPathDepth)
	}
	for c := range strings.SplitSeq(p, "/") {
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
// It is a tree of case-folded names held in one map, so adding a path costs
// time linear in its length: no prefix is walked twice.
type pathSet struct {
	children map[pathKey]int32 // (parent node, folded name) -> node
	nodes    []pathNode        // node 0 is the root
}

type pathKey struct {
	parent int32
	name   string
}

type pathNode struct {
	file  string // the original path, when the node is a file
	dirOf string // the first file below, when the node is a directory
}

func newPathSet() *pathSet {
	return &pathSet{children: map[pathKey]int32{}, nodes: []pathNode{{}}}
}

// add claims p, which CleanPath has accepted.
func (s *pathSet) add(p string) error {
	folded := strings.ToLower(p)
	var n int32
	rest := folded
	for {
		name, more, found := strings.Cut(rest, "/")
		rest = more
		k := pathKey{parent: n, name: name}
		child, ok := s.children[k]
		if !found { // the file itself
			if ok {
				if prev := s.nodes[child].file; prev != "" {
					if prev == p {
						return fmt.Errorf("%w %q: duplicate path", ErrUnsafePath, p)
					}
					return fmt.Errorf("%w %q: collides with %q when case is folded", ErrUnsafePath, p, prev)
				}
				return fmt.Errorf("%w %q: is also the directory of %q", ErrUnsafePath, p, s.nodes[child].dirOf)
			}
			s.children[k] = int32(len(s.nodes))
			s.nodes = append(s.nodes, pathNode{file: p})
			return nil
		}
		if !ok {
			child = int32(len(s.nodes))
			s.children[k] = child
			s.nodes = append(s.nodes, pathNode{dirOf: p})
		} else if prev := s.nodes[child].file; prev != "" {
			return fmt.Errorf("%w %q: its directory is the file %q", ErrUnsafePath, p, prev)
		}
		n = child
	}
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
	Mode      fs.FileMode
	format    layerFormat
	encrypted bool
}

// Archive reports whether the layer is a tar archive to extract rather than
// one raw file.
func (e Entry) Archive() bool { return e.format != formatRaw }

// Format names the layer encoding: raw, tar, tar+gzip or tar+zstd, with
// "+encrypted" when the layer is encrypted.
func (e Entry) Format() string {
	if e.encrypted {
		return e.format.String() + EncryptedSuffix
	}
	return e.format.String()
}

// Encrypted reports whether the layer is encrypted (its media type ends
// with "+encrypted", as ocicrypt writes it): its digest is then the
// ciphertext's, and its file is the plaintext only once decrypted.
func (e Entry) Encrypted() bool { return e.encrypted }

// Plan reads a model manifest and says how to unpack it, refusing unsafe or
// colliding paths before a byte is written. Layers that are not model files
// (for example an unknown media type) are an error: silently leaving out a
// file would make the unpacked model differ from the signed one.
func Plan(m ocispec.Manifest) ([]Entry, error) {
	if len(m.Layers) == 0 {
		return nil, fmt.Errorf("manifest has no layers")
	}
	if len(m.Layers) > MaxLayers {
		return nil, fmt.Errorf("manifest has %d layers: %w: MaxLayers is %d", len(m.Layers), ErrLimit, MaxLayers)
	}
	set := newPathSet()
	var entries []Entry
	for i, l := range m.Layers {
		mt, encrypted := strings.CutSuffix(l.MediaType, EncryptedSuffix)
		kind, format, ok := parseLayerMediaType(mt)
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
		e := Entry{Layer: l, Path: p, Kind: kind, Mode: 0o644, format: format, encrypted: encrypted}
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

// safeMode is what a pull may apply of a mode from a manifest or an
// archive: the permission bits, less group and world write. The mode is
// unsigned metadata, so it must never widen who can change a file that was
// verified (setuid, setgid and sticky bits are dropped too).
func safeMode(m fs.FileMode) fs.FileMode { return m.Perm() &^ 0o022 }

// layerMode reads the permission bits from the file metadata annotation,
// through safeMode.
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
	return safeMode(fs.FileMode(md.Mode)), true
}

// ErrFilter is returned for include patterns that are malformed or match
// no file: the caller asked for something the model does not have.
var ErrFilter = errors.New("file filter")

// quoteList writes patterns as "a", "b".
func quoteList(ps []string) string {
	q := make([]string, len(ps))
	for i, p := range ps {
		q[i] = strconv.Quote(p)
	}
	return strings.Join(q, ", ")
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
				return nil, fmt.Errorf("%w: include %q: unknown kind, want one of %s", ErrFilter, p, kindList())
			}
		} else if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("%w: include %q: %w", ErrFilter, p, err)
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
		return nil, fmt.Errorf("%w: include %s matches no file of the model", ErrFilter, quoteList(patterns))
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
		if err := fn(p, safeMode(fs.FileMode(h.Mode)), h.Size, tr); err != nil {
			return fmt.Errorf("layer %s: member %q: %w", e.Layer.Digest, h.Name, err)
		}
	}
}
