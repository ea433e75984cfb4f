//go:build unix

package oras

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// canResume says whether a pull may trust what an earlier one staged: on
// Unix, ownership and link counts say who could have written it.
const canResume = true

// notOwned says why fi is not the current user's own (a file must also have
// one link: another name for it could change it later), or "".
func notOwned(fi fs.FileInfo, dir bool) string {
	sys, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "ownership unknown"
	}
	if uid := os.Geteuid(); int(sys.Uid) != uid {
		return fmt.Sprintf("owned by uid %d, not %d", sys.Uid, uid)
	}
	if !dir && uint64(sys.Nlink) != 1 {
		return fmt.Sprintf("%d links", sys.Nlink)
	}
	return ""
}
