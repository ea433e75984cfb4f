//go:build !unix

package integration

import "time"

// selfCPU is not measured where getrusage does not exist: the benchmarks
// then report 0 CPU-seconds.
func selfCPU() time.Duration { return 0 }
