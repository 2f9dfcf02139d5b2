package partition

import (
	"errors"
	"math"
	"strconv"
)

// Verdicts of parseRating.
const (
	ratingOK        = iota
	ratingNotNumber // not a number at all: `rating "abc" is not a number`
	ratingNotFinite // NaN, ±Inf or beyond float32: `rating "NaN" is not finite`
)

// pow10f32[d] is 10^d; each is exact in float32 (5^10 < 2^24).
var pow10f32 = [...]float32{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10}

// fastRating parses a plain decimal (optional sign, digits, optional
// fraction) whose digits, read as one integer m, stay below 2^24 and whose
// fraction has at most 10 digits. Then m and 10^d are exact float32 values
// and one IEEE division gives the correctly rounded result, the same as
// strconv.ParseFloat(s, 32). It reports false for anything else.
func fastRating(b []byte) (float32, bool) {
	i := 0
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		i = 1
	}
	var m uint32
	digits := 0
	for ; i < len(b); i++ {
		c := b[i] - '0'
		if c > 9 {
			break
		}
		m = m*10 + uint32(c)
		if m >= 1<<24 {
			return 0, false
		}
		digits++
	}
	d := 0
	if i < len(b) && b[i] == '.' {
		for i++; i < len(b); i++ {
			c := b[i] - '0'
			if c > 9 {
				break
			}
			m = m*10 + uint32(c)
			d++
			if m >= 1<<24 || d >= len(pow10f32) {
				return 0, false
			}
		}
		digits += d
	}
	if i != len(b) || digits == 0 {
		return 0, false
	}
	f := float32(m)
	if d > 0 {
		f /= pow10f32[d]
	}
	if neg {
		f = -f
	}
	return f, true
}

// parseRating parses a rating as a correctly rounded float32 and says
// whether it is a finite number.
func parseRating(b []byte) (float32, int) {
	if f, ok := fastRating(b); ok {
		return f, ratingOK
	}
	v, err := strconv.ParseFloat(string(b), 32)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, ratingNotNumber
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, ratingNotFinite
	}
	return float32(v), ratingOK
}
