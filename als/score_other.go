//go:build !amd64

package als

// setScoreKernel installs the named scoring kernels and reports whether
// this CPU supports them; only "go" exists off amd64.
func setScoreKernel(name string) bool {
	if name != "go" {
		return false
	}
	setScoreKernelGo()
	return true
}
