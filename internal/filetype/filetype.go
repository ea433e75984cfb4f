// Package filetype names a file's type in words for error messages, the
// same way when packing and when pulling.
package filetype

import "io/fs"

// Name is "folder", "regular file", "symlink", "named pipe", "socket",
// "device" or "special file".
func Name(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "folder"
	case m.IsRegular():
		return "regular file"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}
