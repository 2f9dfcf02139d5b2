package als

import "math"

// Side names one of the two factor matrices.
type Side uint8

const (
	UserSide Side = 0
	ItemSide Side = 1
)

func (s Side) String() string {
	if s == ItemSide {
		return "items"
	}
	return "users"
}

// InitRow fills dst (one row of k factors) with the initial values of the
// row whose external ID is id. The values are a pure function of (seed,
// side, id, column): the same row starts from the same point whatever the
// partitioning, worker count or input order.
//
// Values are |N(0,1)|/√k: positive, so that a first solve against them is
// well conditioned for non-negative data, and of a scale where x·y starts
// near 1.
func InitRow(dst []float32, seed uint64, side Side, id string) {
	h := seed ^ 0x9e3779b97f4a7c15*uint64(side+1)
	// FNV-1a over the ID, then mixed with the seed.
	f := uint64(0xcbf29ce484222325)
	for i := 0; i < len(id); i++ {
		f ^= uint64(id[i])
		f *= 0x100000001b3
	}
	h = mix64(h ^ mix64(f))
	scale := 1 / math.Sqrt(float64(len(dst)))
	for c := range dst {
		a := mix64(h + uint64(2*c+1)*0x9e3779b97f4a7c15)
		b := mix64(a ^ 0xd1b54a32d192ed03)
		// Box–Muller from two uniforms in (0, 1].
		u1 := (float64(a>>11) + 1) / (1 << 53)
		u2 := float64(b>>11) / (1 << 53)
		g := math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
		dst[c] = float32(math.Abs(g) * scale)
	}
}

// mix64 is the splitmix64 finaliser: a bijection with full avalanche.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
