package compare

import (
	"syscall"
	"testing"
	"time"
)

// reportCPU runs the benchmark loop body f and reports the process's CPU
// time per operation as "cpu-ns/op" beside the wall-clock ns/op: on a
// shared machine the wall clock counts time the benchmark waited for a
// core, the CPU time does not.
func reportCPU(b *testing.B, f func()) {
	start := cpuTime()
	n := 0
	for b.Loop() {
		f()
		n++
	}
	if n > 0 {
		b.ReportMetric(float64(cpuTime()-start)/float64(n), "cpu-ns/op")
	}
}

// cpuTime is the user and system CPU time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
