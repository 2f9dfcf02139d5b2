package checkpoint

import (
	"bytes"
	"testing"
)

// FuzzDecodeFactors feeds arbitrary bytes to the factor-file decoder: it
// must return an error or rows×rank values, never panic or over-allocate.
func FuzzDecodeFactors(f *testing.F) {
	var good bytes.Buffer
	if err := writeFactors(&good, []float32{1, 2, 3, 4, 5, 6}, 2); err != nil {
		f.Fatal(err)
	}
	f.Add(good.Bytes(), 2, 3)
	f.Add(good.Bytes()[:10], 2, 3)
	f.Add([]byte("CFCF\x01\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00"), 1, 1)
	f.Fuzz(func(t *testing.T, b []byte, rank, rows int) {
		out, err := decodeFactors(b, rank, rows)
		if err == nil && len(out) != rank*rows {
			t.Fatalf("decoded %d values for %d×%d", len(out), rows, rank)
		}
	})
}
