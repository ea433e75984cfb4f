//go:build !unix

package oras

import "os"

// lockPartial: partial downloads are never shared where resuming is off.
func lockPartial(*os.File) bool { return false }
