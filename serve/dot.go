package serve

// dotRows writes out[i] = x·y_i for the first len(out) rows of the
// row-major matrix y (len(x) columns). It is the scoring loop of every
// query; an architecture file may install a vector version at start-up
// (dot_amd64.go). dotRowsGo is the reference, always built and compared
// against the fast path in tests.
var dotRows = dotRowsGo

// dotKernel names the scoring kernel in use: "go" or "avx512".
var dotKernel = "go"

// dotRowsGo scores four rows at a time, so that each element of x is
// loaded once per four products and the four sums are independent chains.
func dotRowsGo(out, x, y []float32) {
	k := len(x)
	n := len(out)
	if n == 0 {
		return
	}
	if k == 0 {
		clear(out)
		return
	}
	_ = y[n*k-1] // one bounds check for the whole matrix
	i := 0
	for ; i+4 <= n; i += 4 {
		y0 := y[i*k : i*k+k]
		y1 := y[(i+1)*k : (i+1)*k+k]
		y2 := y[(i+2)*k : (i+2)*k+k]
		y3 := y[(i+3)*k : (i+3)*k+k]
		var s0, s1, s2, s3 float32
		for c, a := range x {
			s0 += a * y0[c]
			s1 += a * y1[c]
			s2 += a * y2[c]
			s3 += a * y3[c]
		}
		out[i], out[i+1], out[i+2], out[i+3] = s0, s1, s2, s3
	}
	for ; i < n; i++ {
		yi := y[i*k : i*k+k]
		var s float32
		for c, a := range x {
			s += a * yi[c]
		}
		out[i] = s
	}
}
