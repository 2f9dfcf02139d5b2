package checkpoint

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// benchModel is a MovieLens-20M-shaped model at rank 64 (138,493 users,
// 26,744 items: 42 MB of factors) in 4×4 blocks.
func benchBlocks(rank int) []*Block {
	rng := rand.New(rand.NewPCG(1, 2))
	var out []*Block
	for _, side := range []struct {
		name string
		rows int
	}{{SideUsers, 138_493}, {SideItems, 26_744}} {
		for b := range 4 {
			n := side.rows / 4
			if b == 3 {
				n = side.rows - 3*(side.rows/4)
			}
			out = append(out, randomBlock(rng, side.name, b, n, rank, fmt.Sprintf("%s%d-", side.name[:1], b)))
		}
	}
	return out
}

func factorBytes(blocks []*Block) int64 {
	var n int64
	for _, b := range blocks {
		n += int64(len(b.Factors)) * 4
	}
	return n
}

// writeBench writes every block and the manifest of one snapshot.
func writeBench(b *testing.B, r *Repo, id string, blocks []*Block) {
	ctx := context.Background()
	m := &Manifest{ID: id, Model: "bench", Job: "bench", Iteration: 1, Rank: blocks[0].Rank, UserBlocks: 4, ItemBlocks: 4, Final: true, Created: time.Now().UTC()}
	for _, blk := range blocks {
		fi, err := r.WriteBlock(ctx, id, blk)
		if err != nil {
			b.Fatal(err)
		}
		m.Files = append(m.Files, fi)
		if blk.Side == SideUsers {
			m.Users += len(blk.IDs)
		} else {
			m.Items += len(blk.IDs)
		}
	}
	if err := r.Commit(ctx, id, m); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSnapshot reports write and read (Open: every CRC checked,
// decoded, assembled with ID indexes) throughput in MB/s of factor data
// for a directory store and the JetStream store.
func BenchmarkSnapshot(b *testing.B) {
	blocks := benchBlocks(64)
	mb := float64(factorBytes(blocks)) / 1e6
	stores := map[string]func(b *testing.B) *Repo{
		"dir": func(b *testing.B) *Repo { d := DirStore{Root: b.TempDir()}; return NewRepo(d, d) },
		"nats": func(b *testing.B) *Repo {
			s := startBlobStore(b)
			return NewRepo(s, s)
		},
	}
	for _, name := range []string{"dir", "nats"} {
		b.Run(name+"/write", func(b *testing.B) {
			r := stores[name](b)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				writeBench(b, r, fmt.Sprintf("s%d", i), blocks)
			}
			b.ReportMetric(mb*float64(b.N)/b.Elapsed().Seconds(), "MB/s")
		})
		b.Run(name+"/read", func(b *testing.B) {
			r := stores[name](b)
			writeBench(b, r, "s", blocks)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				m, err := r.Open(context.Background(), "s")
				if err != nil {
					b.Fatal(err)
				}
				if len(m.X) == 0 {
					b.Fatal("empty model")
				}
			}
			b.ReportMetric(mb*float64(b.N)/b.Elapsed().Seconds(), "MB/s")
		})
	}
}
