//go:build unix

package oras

import (
	"os"
	"syscall"
)

// lockPartial takes an exclusive lock on a partial download for as long as
// f is open, without waiting. Two pulls into the same folder (or two
// layers with the same blob) must not write one file: the second downloads
// under its own name instead.
func lockPartial(f *os.File) bool {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
}
