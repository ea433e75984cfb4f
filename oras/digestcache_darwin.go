package oras

import (
	"fmt"
	"os"
	"syscall"
)

// fileIdentity is what says "the same file, unchanged": device, inode,
// mtime and ctime (which no user can set back). Darwin names the times
// Mtimespec and Ctimespec.
func fileIdentity(fi os.FileInfo) (string, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "", false
	}
	return fmt.Sprintf("%d\x00%d\x00%d.%d\x00%d.%d", st.Dev, st.Ino,
		st.Mtimespec.Sec, st.Mtimespec.Nsec, st.Ctimespec.Sec, st.Ctimespec.Nsec), true
}
