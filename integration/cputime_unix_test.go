//go:build unix

package integration

import (
	"syscall"
	"time"
)

// selfCPU is the CPU time this process has used (user and system): the
// benchmarks report it beside wall time because on a loaded machine the
// wall time is mostly waiting for a CPU.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
