//go:build !amd64

package als

// kernelPaths lists the kernel sets this CPU can run, best last.
func kernelPaths() []string { return []string{"go"} }

// setKernel installs the named kernel set and reports whether this CPU
// supports it; only "go" exists off amd64.
func setKernel(name string) bool {
	if name != "go" {
		return false
	}
	setKernelGo()
	return true
}

// fmaPeakKernel is FMAPeak's loop and its flops an iteration.
func fmaPeakKernel() (func(n int), float64) { return fmaPeakGo, 16 }
