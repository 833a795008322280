//go:build linux

package sqlstore_test

import (
	"syscall"
	"time"
)

// processCPU is the CPU time the test process has used so far: on a
// loaded machine it measures the work done better than the wall clock.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
