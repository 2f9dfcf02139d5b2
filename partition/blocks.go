package partition

import (
	"fmt"
	"sort"
)

// Side names the user or the item side of the ratings matrix.
type Side uint8

const (
	Users Side = 0
	Items Side = 1
)

func (s Side) String() string {
	if s == Items {
		return "items"
	}
	return "users"
}

// Other is the opposite side.
func (s Side) Other() Side { return 1 - s }

// Block is the unit a worker holds and updates: a contiguous range of one
// side's rows with all their ratings, and the routing information for the
// other side's rows it needs.
type Block struct {
	Side  Side
	Index int   // block number on its side
	Start int32 // global index of the first row
	// Rows holds the block's ratings: Ptr starts at 0; Col indexes Needed
	// (not the other side's global index), so the needed rows can be
	// gathered into one contiguous array in Needed order.
	Rows CSR
	// Needed lists the global indices of the other side's rows that the
	// block's ratings refer to, ascending.
	Needed []int32
	// NeedPtr routes Needed by owner: Needed[NeedPtr[q]:NeedPtr[q+1]] are
	// the rows held by the other side's block q.
	NeedPtr []int32
}

// Len is the number of rows in the block.
func (b *Block) Len() int { return b.Rows.Rows() }

// End is one past the global index of the block's last row.
func (b *Block) End() int32 { return b.Start + int32(b.Len()) }

// NeededFrom returns the global indices of the rows b needs from the other
// side's block q.
func (b *Block) NeededFrom(q int) []int32 { return b.Needed[b.NeedPtr[q]:b.NeedPtr[q+1]] }

// Layout is a Dataset split into user blocks and item blocks.
type Layout struct {
	// UserBounds[p] is the first user of user block p; the last entry is
	// the user count. Likewise ItemBounds.
	UserBounds, ItemBounds []int32
	UserBlocks, ItemBlocks []*Block
}

// Bounds returns the row ranges of side s's blocks.
func (l *Layout) Bounds(s Side) []int32 {
	if s == Items {
		return l.ItemBounds
	}
	return l.UserBounds
}

// Blocks returns side s's blocks.
func (l *Layout) Blocks(s Side) []*Block {
	if s == Items {
		return l.ItemBlocks
	}
	return l.UserBlocks
}

// NewLayout splits ds into (up to) p user blocks and q item blocks of
// contiguous rows with about equal rating counts. The block count on a side
// is reduced to its row count when it has fewer rows. The layout is a pure
// function of ds, p and q. The blocks copy what they need; ds is not
// modified.
func NewLayout(ds *Dataset, p, q int) (*Layout, error) {
	if p < 1 || q < 1 {
		return nil, fmt.Errorf("partition: block counts %d×%d must be ≥ 1", p, q)
	}
	l := &Layout{
		UserBounds: BalancedBounds(ds.ByUser.Ptr, p),
		ItemBounds: BalancedBounds(ds.ByItem.Ptr, q),
	}
	l.UserBlocks = makeBlocks(Users, ds.ByUser, l.UserBounds, l.ItemBounds, ds.Items.Len())
	l.ItemBlocks = makeBlocks(Items, ds.ByItem, l.ItemBounds, l.UserBounds, ds.Users.Len())
	return l, nil
}

// BalancedBounds cuts the rows of a CSR row pointer into at most parts
// contiguous ranges of about nnz/parts entries each, every range holding at
// least one row. It returns the range starts followed by the row count.
func BalancedBounds(ptr []int64, parts int) []int32 {
	n := len(ptr) - 1
	parts = max(min(parts, n), 1)
	total := ptr[n]
	bounds := make([]int32, 0, parts+1)
	bounds = append(bounds, 0)
	for b := 1; b < parts; b++ {
		target := total * int64(b) / int64(parts)
		// First row whose start reaches the target, but leave at least
		// one row for this range and for each range still to come.
		r := sort.Search(n, func(r int) bool { return ptr[r] >= target })
		r = max(r, int(bounds[b-1])+1)
		r = min(r, n-(parts-b))
		bounds = append(bounds, int32(r))
	}
	return append(bounds, int32(n))
}

func makeBlocks(side Side, m CSR, bounds, otherBounds []int32, nOther int) []*Block {
	blocks := make([]*Block, len(bounds)-1)
	local := make([]int32, nOther) // global other index → position in Needed, for the current block
	for b := range blocks {
		lo, hi := bounds[b], bounds[b+1]
		plo, phi := m.Ptr[lo], m.Ptr[hi]
		blk := &Block{Side: side, Index: b, Start: lo}
		blk.Rows.Ptr = make([]int64, hi-lo+1)
		for r := lo; r <= hi; r++ {
			blk.Rows.Ptr[r-lo] = m.Ptr[r] - plo
		}
		blk.Rows.Val = append([]float32(nil), m.Val[plo:phi]...)
		// Needed: the distinct columns, ascending.
		seen := make([]bool, nOther)
		count := 0
		for _, c := range m.Col[plo:phi] {
			if !seen[c] {
				seen[c] = true
				count++
			}
		}
		blk.Needed = make([]int32, 0, count)
		for c, ok := range seen {
			if ok {
				local[c] = int32(len(blk.Needed))
				blk.Needed = append(blk.Needed, int32(c))
			}
		}
		blk.Rows.Col = make([]int32, phi-plo)
		for j, c := range m.Col[plo:phi] {
			blk.Rows.Col[j] = local[c]
		}
		blk.NeedPtr = make([]int32, len(otherBounds))
		for q := range otherBounds {
			blk.NeedPtr[q] = int32(sort.Search(len(blk.Needed), func(j int) bool { return blk.Needed[j] >= otherBounds[q] }))
		}
		blocks[b] = blk
	}
	return blocks
}
