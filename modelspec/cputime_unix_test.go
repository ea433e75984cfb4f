//go:build unix

package modelspec

import (
	"syscall"
	"time"
)

// processCPU is the CPU time this process has used (user and system), so a
// benchmark on a loaded machine can report what the work itself costs.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
