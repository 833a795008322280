package registrytest

import "syscall"

// sysProcAttr makes the kernel kill the registry when the test binary
// dies without running its cleanups (a panic, a timeout). Strictly the
// signal follows the OS thread that started it, which the Go runtime does
// not retire in tests; t.Cleanup remains the normal way it stops.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
