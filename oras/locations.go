package oras

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"
)

// Bounds of the location record: it is a hint for cross-repository
// mounts, so losing old entries costs at most an upload.
const (
	// maxLocatedBlobs is how many digests the record keeps (the least
	// recently seen go first): about 1 MiB of JSON at most.
	maxLocatedBlobs = 4096
	// maxReposPerBlob is how many repositories are kept for one digest, the
	// most recent first.
	maxReposPerBlob = 4
	// maxLocationsFile is the largest record file read; a bigger one is
	// ignored (and replaced on the next write).
	maxLocationsFile = 4 << 20
	// locationsFile is the record's name inside the digest cache folder.
	locationsFile = "locations.json"
)

// blobLocations remembers where each blob was seen: the (registry host,
// repository) pairs where a push stored it or a pull read it, with its
// size. Push uses it to mount a blob from another repository of the same
// registry instead of sending it. It is never trusted for integrity: a
// mount names the digest, and only the registry's 201 for that digest
// counts; any other answer falls back to an upload. A nil record
// remembers nothing.
type blobLocations struct {
	path string

	mu      sync.Mutex
	entries map[digest.Digest]*locatedBlob
	changed map[digest.Digest]bool
}

// locatedBlob is one digest's entry in the record file.
type locatedBlob struct {
	Size  int64         `json:"size"`
	Seen  []blobAddress `json:"seen"` // most recent first
	Since int64         `json:"last"` // Unix seconds when last seen, for eviction
}

// blobAddress is a repository of a registry.
type blobAddress struct {
	Host       string `json:"host"`
	Repository string `json:"repository"`
}

// openLocations reads the record in the digest cache folder dir; an empty
// dir gives nil (no record), and a missing or unreadable file an empty one.
func openLocations(dir string) *blobLocations {
	if dir == "" {
		return nil
	}
	l := &blobLocations{path: filepath.Join(dir, locationsFile), changed: map[digest.Digest]bool{}}
	l.entries = readLocations(l.path)
	return l
}

func readLocations(path string) map[digest.Digest]*locatedBlob {
	entries := map[digest.Digest]*locatedBlob{}
	f, err := os.Open(path)
	if err != nil {
		return entries
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxLocationsFile+1))
	if err != nil || len(b) > maxLocationsFile {
		return entries
	}
	var raw map[string]*locatedBlob
	if json.Unmarshal(b, &raw) != nil {
		return entries
	}
	for k, v := range raw {
		d, err := digest.Parse(k)
		if err != nil || v == nil || v.Size < 0 {
			continue
		}
		entries[d] = v
	}
	return entries
}

// remoteAddress is the registry host and repository of a store that is a
// remote repository (directly or inside a Target).
func remoteAddress(s any) (*remote.Repository, blobAddress, bool) {
	switch v := s.(type) {
	case *Target:
		return remoteAddress(v.GraphTarget)
	case *remote.Repository:
		return v, blobAddress{Host: strings.ToLower(v.Reference.Registry), Repository: v.Reference.Repository}, true
	}
	return nil, blobAddress{}, false
}

// add records that blob d of size bytes is in the repository at.
func (l *blobLocations) add(d digest.Digest, size int64, at blobAddress) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[d]
	if e == nil || e.Size != size {
		e = &locatedBlob{Size: size}
		l.entries[d] = e
	}
	e.Seen = slices.DeleteFunc(e.Seen, func(a blobAddress) bool { return a == at })
	e.Seen = append([]blobAddress{at}, e.Seen...)
	if len(e.Seen) > maxReposPerBlob {
		e.Seen = e.Seen[:maxReposPerBlob]
	}
	e.Since = time.Now().Unix()
	l.changed[d] = true
}

// sources are the other repositories of the same registry where blob d of
// size bytes was seen, the most recent first.
func (l *blobLocations) sources(d digest.Digest, size int64, to blobAddress) []string {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[d]
	if e == nil || e.Size != size {
		return nil
	}
	var repos []string
	for _, a := range e.Seen {
		if a.Host == to.Host && a.Repository != to.Repository {
			repos = append(repos, a.Repository)
		}
	}
	return repos
}

// mayHold reports whether some blob of exactly size bytes was seen on the
// host: only then is a big file worth hashing before its upload, to ask
// for a mount. It costs a second read of the file when the answer is a
// false positive, never a byte on the network.
func (l *blobLocations) mayHold(host string, size int64) bool {
	if l == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.entries {
		if e.Size != size {
			continue
		}
		for _, a := range e.Seen {
			if a.Host == host {
				return true
			}
		}
	}
	return false
}

// save writes what changed into the record file, merged with what other
// processes wrote meanwhile (the file is re-read; the newest entry of a
// digest wins), trimmed to maxLocatedBlobs. A record that cannot be
// written is not an error: the next push uploads instead of mounting.
func (l *blobLocations) save() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.changed) == 0 {
		return
	}
	merged := readLocations(l.path)
	for d := range l.changed {
		if old := merged[d]; old == nil || old.Since <= l.entries[d].Since {
			merged[d] = l.entries[d]
		}
	}
	if len(merged) > maxLocatedBlobs {
		ds := make([]digest.Digest, 0, len(merged))
		for d := range merged {
			ds = append(ds, d)
		}
		sort.Slice(ds, func(i, j int) bool { return merged[ds[i]].Since > merged[ds[j]].Since })
		for _, d := range ds[maxLocatedBlobs:] {
			delete(merged, d)
		}
	}
	b, err := json.Marshal(merged)
	if err != nil {
		return
	}
	dir := filepath.Dir(l.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return
	}
	tmp, err := os.CreateTemp(dir, locationsFile+".tmp")
	if err != nil {
		return
	}
	_, err = tmp.Write(b)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil || os.Rename(tmp.Name(), l.path) != nil {
		os.Remove(tmp.Name())
		return
	}
	l.entries = merged
	clear(l.changed)
}

// recordPulled remembers, in the digest cache folder dir, that the blobs
// of a pull from src are in src's repository, so that a later push of the
// same files to another repository of that registry mounts them instead of
// sending them. A store that is not a registry, or an empty dir, records
// nothing.
func recordPulled(dir string, src content.Fetcher, res *PullResult) {
	_, at, ok := remoteAddress(src)
	if !ok || res == nil {
		return
	}
	l := openLocations(dir)
	for _, f := range res.Files {
		if f.Encrypted {
			continue // the plaintext's digest: that blob is not in the registry
		}
		l.add(f.Digest, f.Size, at)
	}
	l.save()
}
