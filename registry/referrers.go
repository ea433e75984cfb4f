package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// referrerIndex maps repository → subject digest → referrer descriptors,
// held in memory and mirrored on disk one small file per referrer, so a
// restart loses nothing and a lost index can be rebuilt from the manifests.
type referrerIndex struct {
	dir string
	mu  sync.RWMutex
	m   map[string]map[digest.Digest]map[digest.Digest]ocispec.Descriptor
	// bySubject finds a referrer's subject on manifest delete.
	subjectOf map[string]map[digest.Digest]digest.Digest
}

// completeMarker exists while the on-disk index is known to match storage:
// it is removed while serving and written back on a clean shutdown, so an
// unclean stop makes the next start rebuild the index.
const completeMarker = ".complete"

var repoNameRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)

func newReferrerIndex(dir string) *referrerIndex {
	return &referrerIndex{
		dir:       dir,
		m:         map[string]map[digest.Digest]map[digest.Digest]ocispec.Descriptor{},
		subjectOf: map[string]map[digest.Digest]digest.Digest{},
	}
}

// indexEntry is one referrer as stored on disk.
type indexEntry struct {
	Subject    digest.Digest      `json:"subject"`
	Descriptor ocispec.Descriptor `json:"descriptor"`
}

func (x *referrerIndex) file(repo string, subject, ref digest.Digest) string {
	return filepath.Join(x.dir, filepath.FromSlash(repo), "_subjects", subject.Algorithm().String(), subject.Encoded(),
		ref.Algorithm().String()+"-"+ref.Encoded()+".json")
}

// complete reports whether the on-disk index was closed cleanly.
func (x *referrerIndex) complete() bool {
	_, err := os.Stat(filepath.Join(x.dir, completeMarker))
	return err == nil
}

func (x *referrerIndex) setComplete(ok bool) error {
	p := filepath.Join(x.dir, completeMarker)
	if !ok {
		err := os.Remove(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	if err := os.MkdirAll(x.dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, nil, 0o644)
}

// load reads the on-disk index into memory.
func (x *referrerIndex) load() error {
	return filepath.WalkDir(x.dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(p, ".json") {
			return nil
		}
		rel, _ := filepath.Rel(x.dir, p)
		repo, _, ok := strings.Cut(filepath.ToSlash(rel), "/_subjects/")
		if !ok {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var e indexEntry
		if err := json.Unmarshal(b, &e); err != nil {
			return fmt.Errorf("referrers index %s: %w", p, err)
		}
		x.put(repo, e.Subject, e.Descriptor)
		return nil
	})
}

func (x *referrerIndex) put(repo string, subject digest.Digest, d ocispec.Descriptor) {
	if x.m[repo] == nil {
		x.m[repo] = map[digest.Digest]map[digest.Digest]ocispec.Descriptor{}
		x.subjectOf[repo] = map[digest.Digest]digest.Digest{}
	}
	if x.m[repo][subject] == nil {
		x.m[repo][subject] = map[digest.Digest]ocispec.Descriptor{}
	}
	x.m[repo][subject][d.Digest] = d
	x.subjectOf[repo][d.Digest] = subject
}

// add records d as a referrer of subject in repo, on disk first.
func (x *referrerIndex) add(repo string, subject digest.Digest, d ocispec.Descriptor) error {
	if !repoNameRE.MatchString(repo) {
		return fmt.Errorf("repository name %q", repo)
	}
	b, err := json.Marshal(indexEntry{Subject: subject, Descriptor: d})
	if err != nil {
		return err
	}
	p := x.file(repo, subject, d.Digest)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		return err
	}
	x.mu.Lock()
	x.put(repo, subject, d)
	x.mu.Unlock()
	return nil
}

// remove forgets the referrer ref in repo, if it is one.
func (x *referrerIndex) remove(repo string, ref digest.Digest) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	subject, ok := x.subjectOf[repo][ref]
	if !ok {
		return nil
	}
	delete(x.subjectOf[repo], ref)
	delete(x.m[repo][subject], ref)
	err := os.Remove(x.file(repo, subject, ref))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// index builds the referrers image index of subject, keeping only
// referrers of artifactType when it is not empty.
func (x *referrerIndex) index(repo string, subject digest.Digest, artifactType string) ocispec.Index {
	x.mu.RLock()
	defer x.mu.RUnlock()
	idx := ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{},
	}
	for _, d := range x.m[repo][subject] {
		if artifactType == "" || d.ArtifactType == artifactType {
			idx.Manifests = append(idx.Manifests, d)
		}
	}
	sort.Slice(idx.Manifests, func(i, j int) bool { return idx.Manifests[i].Digest < idx.Manifests[j].Digest })
	return idx
}

// referrerDescriptor reads a pushed manifest and returns its subject and
// its descriptor as the Referrers API lists it, or ok false when it has no
// subject. An image manifest without artifactType is listed under its
// config media type, as the distribution spec says.
func referrerDescriptor(mediaType string, body []byte) (subject digest.Digest, d ocispec.Descriptor, ok bool) {
	var m struct {
		MediaType    string              `json:"mediaType"`
		ArtifactType string              `json:"artifactType"`
		Config       *ocispec.Descriptor `json:"config"`
		Subject      *ocispec.Descriptor `json:"subject"`
		Annotations  map[string]string   `json:"annotations"`
	}
	if err := json.Unmarshal(body, &m); err != nil || m.Subject == nil || m.Subject.Digest.Validate() != nil {
		return "", d, false
	}
	if m.MediaType != "" {
		mediaType = m.MediaType
	}
	if mediaType != ocispec.MediaTypeImageManifest && mediaType != ocispec.MediaTypeImageIndex {
		return "", d, false
	}
	at := m.ArtifactType
	if at == "" && m.Config != nil && mediaType == ocispec.MediaTypeImageManifest {
		at = m.Config.MediaType
	}
	return m.Subject.Digest, ocispec.Descriptor{
		MediaType:    mediaType,
		ArtifactType: at,
		Digest:       digest.FromBytes(body),
		Size:         int64(len(body)),
		Annotations:  m.Annotations,
	}, true
}
