//go:build !linux && !darwin

package oras

import "os"

// fileIdentity has no ctime to rely on here (a user can set mtime back),
// so nothing is remembered and every file is read.
func fileIdentity(os.FileInfo) (string, bool) { return "", false }
