//go:build !unix

package oras

import "io/fs"

// canResume is false where ownership is not checked (Windows): a pull then
// never trusts what an earlier one staged, and a failed pull keeps nothing.
const canResume = false

// notOwned: ownership is not checked here, so nothing is taken as ours.
func notOwned(fs.FileInfo, bool) string { return "ownership is not checked on this system" }
