package oras

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
)

// digestCache remembers the digest of a file by its identity and times
// (device, inode, size, mtime, ctime), like git's index: a re-push of an
// unchanged model can ask the registry "do you have this blob?" without
// reading a byte. ctime cannot be set back by a user, so a file changed in
// place is always re-read. A nil cache remembers nothing.
type digestCache struct{ dir string }

func newDigestCache(dir string) *digestCache {
	if dir == "" {
		return nil
	}
	return &digestCache{dir: dir}
}

func (c *digestCache) key(p string) string {
	if c == nil {
		return ""
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return ""
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return ""
	}
	id, ok := fileIdentity(fi)
	if !ok {
		return ""
	}
	h := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%d", abs, id, fi.Size()))
	return hex.EncodeToString(h[:])
}

func (c *digestCache) get(key string) digest.Digest {
	if c == nil || key == "" {
		return ""
	}
	b, err := os.ReadFile(filepath.Join(c.dir, key[:2], key))
	if err != nil {
		return ""
	}
	d, err := digest.Parse(string(b))
	if err != nil {
		return ""
	}
	return d
}

// put records d for key; a cache that cannot be written is not an error.
func (c *digestCache) put(key string, d digest.Digest) {
	if c == nil || key == "" {
		return
	}
	dir := filepath.Join(c.dir, key[:2])
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return
	}
	tmp, err := os.CreateTemp(dir, key+".tmp")
	if err != nil {
		return
	}
	_, err = tmp.WriteString(d.String())
	tmp.Close()
	if err != nil {
		os.Remove(tmp.Name())
		return
	}
	_ = os.Rename(tmp.Name(), filepath.Join(dir, key))
}
