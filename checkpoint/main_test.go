package checkpoint

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cofactor-ml/cofactor/internal/leaktest"
	"github.com/cofactor-ml/cofactor/transport/embedded"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leaktest.Ignored()...) }

// reseal returns a copy of a file with its trailing CRC-32C recomputed, so
// that a structural change gets past the checksum.
func reseal(b []byte) []byte {
	out := append([]byte(nil), b...)
	if len(out) < crcBytes {
		return out
	}
	body := out[:len(out)-crcBytes]
	binary.LittleEndian.PutUint32(out[len(body):], crc32.Checksum(body, castagnoli))
	return out
}

func crcOf(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// randomBlock returns a block of rows random rows: IDs "<prefix><n>" and
// factors drawn from a normal distribution.
func randomBlock(rng *rand.Rand, side string, index, rows, rank int, prefix string) *Block {
	b := &Block{Side: side, Index: index, Rank: rank, IDs: make([]string, rows), Counts: make([]int32, rows), Factors: make([]float32, rows*rank)}
	for r := range rows {
		b.IDs[r] = fmt.Sprintf("%s%d", prefix, r)
		b.Counts[r] = rng.Int32N(1000)
	}
	for i := range b.Factors {
		b.Factors[i] = float32(rng.NormFloat64())
	}
	return b
}

// sameFloats compares two float32 slices bit for bit (NaN payloads and -0
// included).
func sameFloats(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// The test snapshot: 2 user blocks × 3 item blocks, rank 3. Item block 1 is
// empty, as a partition of a small catalogue can leave one.
var (
	testUserBlocks = [][]string{{"alice", "bob", "carol"}, {"dave", "eve"}}
	testItemBlocks = [][]string{{"i-apple", "i-banana"}, {}, {"i-cherry", "i-date", "i-elder"}}
	// testSeen holds each user's training items (global item indices).
	testSeen = [][]int32{{0, 2}, {}, {1, 3, 4}, {4}, {0, 1, 2, 3, 4}}
)

const testRank = 3

// testFactor is the value of factor k of global row r of a side.
func testFactor(side string, r, k int) float32 {
	v := float32(r) + float32(k)/8
	if side == SideItems {
		v = -v - 0.5
	}
	return v
}

// writeSnapshot writes and commits the test snapshot as id of model.
func writeSnapshot(t testing.TB, r *Repo, id, model string, created time.Time, final bool) *Manifest {
	t.Helper()
	ctx := context.Background()
	m := &Manifest{ID: id, Model: model, Job: "job-" + id, Iteration: 4, Rank: testRank, Lambda: 0.05,
		UserBlocks: len(testUserBlocks), ItemBlocks: len(testItemBlocks), Final: final, Created: created,
		Metrics: map[string]float64{"train_rmse": 0.75}}
	for _, side := range []struct {
		name   string
		blocks [][]string
	}{{SideUsers, testUserBlocks}, {SideItems, testItemBlocks}} {
		row := 0
		for bi, ids := range side.blocks {
			b := &Block{Side: side.name, Index: bi, Rank: testRank, IDs: ids, Counts: make([]int32, len(ids)), Factors: make([]float32, 0, len(ids)*testRank)}
			for r := range ids {
				b.Counts[r] = int32(10*(row+r) + 1)
				for k := range testRank {
					b.Factors = append(b.Factors, testFactor(side.name, row+r, k))
				}
			}
			row += len(ids)
			fi, err := r.WriteBlock(ctx, id, b)
			if err != nil {
				t.Fatal(err)
			}
			m.Files = append(m.Files, fi)
		}
		if side.name == SideUsers {
			m.Users = row
		} else {
			m.Items = row
		}
	}
	if final {
		u := 0
		for bi, ids := range testUserBlocks {
			s := &Seen{Index: bi, Ptr: []int64{0}}
			for range ids {
				s.Items = append(s.Items, testSeen[u]...)
				s.Ptr = append(s.Ptr, int64(len(s.Items)))
				u++
			}
			fi, err := r.WriteSeen(ctx, id, s)
			if err != nil {
				t.Fatal(err)
			}
			m.Files = append(m.Files, fi)
		}
	}
	if err := r.Commit(ctx, id, m); err != nil {
		t.Fatal(err)
	}
	return m
}

// startBlobStore starts an in-process NATS server with JetStream and opens
// a BlobStore on it; both end with the test.
func startBlobStore(t testing.TB) *BlobStore {
	t.Helper()
	e, err := embedded.Start(embedded.Options{JetStream: true, StoreDir: t.TempDir(), NoListen: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	s, err := OpenBlobStore(context.Background(), nc)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// storeKinds are the two stores, for tests that both must pass.
var storeKinds = []struct {
	name string
	open func(t testing.TB) (Store, Pointers)
}{
	{"dir", func(t testing.TB) (Store, Pointers) { d := DirStore{Root: t.TempDir()}; return d, d }},
	{"nats", func(t testing.TB) (Store, Pointers) { s := startBlobStore(t); return s, s }},
}
