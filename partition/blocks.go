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
// other side's rows it needs and for its own rows that other blocks need.
type Block struct {
	Side  Side
	Index int   // block number on its side
	Start int32 // global index of the first row
	// IDs are the external IDs of the block's rows, in row order.
	IDs []string
	// Rows holds the block's training ratings: Ptr starts at 0; Col
	// indexes Needed (not the other side's global index), so the needed
	// rows can be gathered into one contiguous array in Needed order.
	Rows CSR
	// Test holds the held-out ratings of a user block's rows (empty for
	// item blocks), with Col indexing Needed like Rows: the rows gathered
	// for a phase also evaluate the test error.
	Test CSR
	// Needed lists the global indices of the other side's rows that the
	// block's training or test ratings refer to, ascending.
	Needed []int32
	// NeedPtr routes Needed by owner: Needed[NeedPtr[q]:NeedPtr[q+1]] are
	// the rows held by the other side's block q.
	NeedPtr []int32
	// Send is the routing table seen from the sender:
	// Send[SendPtr[p]:SendPtr[p+1]] are the block's own rows (local
	// indices, ascending) that the other side's block p needs, in the
	// order p gathers them.
	Send    []int32
	SendPtr []int32
}

// Len is the number of rows in the block.
func (b *Block) Len() int { return b.Rows.Rows() }

// End is one past the global index of the block's last row.
func (b *Block) End() int32 { return b.Start + int32(b.Len()) }

// NeededCount is how many rows of the other side the block needs: the
// length of Needed, also when Needed itself was dropped (DropNeeded).
func (b *Block) NeededCount() int {
	if len(b.NeedPtr) == 0 {
		return len(b.Needed)
	}
	return int(b.NeedPtr[len(b.NeedPtr)-1])
}

// DropNeeded lets go of Needed but keeps NeedPtr, which routes a gather:
// a worker solving the block gathers by NeedPtr and needs the global
// indices only to map ratings back to the other side's rows (a user
// block's seen items and test ratings), never for an item block.
func (b *Block) DropNeeded() { b.Needed = nil }

// NeededFrom returns the global indices of the rows b needs from the other
// side's block q.
func (b *Block) NeededFrom(q int) []int32 { return b.Needed[b.NeedPtr[q]:b.NeedPtr[q+1]] }

// SendTo returns the local indices of b's rows that the other side's block
// p needs.
func (b *Block) SendTo(p int) []int32 { return b.Send[b.SendPtr[p]:b.SendPtr[p+1]] }

// Layout is a Dataset split into user blocks and item blocks.
type Layout struct {
	// UserBounds[p] is the first user of user block p; the last entry is
	// the user count. Likewise ItemBounds.
	UserBounds, ItemBounds []int32
	UserBlocks, ItemBlocks []*Block
	// testPtr is the row pointer of the test set over users (testByUser),
	// built once for planning and kept for CutRows.
	testPtr []int64
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
// function of ds, p and q. The blocks' values (and, for a block that needs
// every row of the other side, their columns and row pointers) share ds's
// arrays, which must not be modified while the layout is in use.
func NewLayout(ds *Dataset, p, q int) (*Layout, error) {
	l, err := PlanLayout(ds, p, q)
	if err != nil {
		return nil, err
	}
	for _, side := range []Side{Users, Items} {
		for _, blk := range l.Blocks(side) {
			l.CutRows(ds, blk)
		}
	}
	return l, nil
}

// PlanLayout is NewLayout without the blocks' ratings: every block has its
// IDs and routing (Needed, NeedPtr, Send) but empty Rows and Test until
// CutRows fills them. A partitioner that stores blocks one by one cuts,
// stores and drops (Block.DropRows) each in turn, so that it holds one
// block's ratings beside the dataset instead of a second copy of all.
func PlanLayout(ds *Dataset, p, q int) (*Layout, error) {
	if p < 1 || q < 1 {
		return nil, fmt.Errorf("partition: block counts %d×%d must be ≥ 1", p, q)
	}
	return planWithBounds(ds, BalancedBounds(ds.ByUser.Ptr, p), BalancedBounds(ds.ByItem.Ptr, q)), nil
}

// planWithBounds is PlanLayout with the blocks' bounds given.
func planWithBounds(ds *Dataset, userBounds, itemBounds []int32) *Layout {
	l := &Layout{UserBounds: userBounds, ItemBounds: itemBounds}
	test := testByUser(ds)
	l.testPtr = test.Ptr
	l.UserBlocks = planBlocks(Users, ds.ByUser, test, ds.Users.IDs(), l.UserBounds, l.ItemBounds, ds.Items.Len())
	l.ItemBlocks = planBlocks(Items, ds.ByItem, CSR{}, ds.Items.IDs(), l.ItemBounds, l.UserBounds, ds.Users.Len())
	fillSend(l.UserBlocks, l.ItemBlocks)
	fillSend(l.ItemBlocks, l.UserBlocks)
	return l
}

// CutRows fills blk's Rows (and, for a user block, Test) from ds, the
// dataset the layout was planned on.
func (l *Layout) CutRows(ds *Dataset, blk *Block) {
	m, test, nOther := ds.ByUser, CSR{}, ds.Items.Len()
	if blk.Side == Items {
		m, nOther = ds.ByItem, ds.Users.Len()
	} else {
		test = CSR{Ptr: l.testPtr, Col: ds.Test.I, Val: ds.Test.R}
	}
	bounds := l.Bounds(blk.Side)
	lo, hi := bounds[blk.Index], bounds[blk.Index+1]
	var local []int32 // global other index → position in Needed
	if len(blk.Needed) < nOther {
		local = make([]int32, nOther)
		for j, c := range blk.Needed {
			local[c] = int32(j)
		}
	}
	blk.Rows = sliceRows(m, lo, hi, local)
	if test.Rows() > 0 {
		blk.Test = sliceRows(test, lo, hi, local)
	} else {
		blk.Test = CSR{Ptr: make([]int64, hi-lo+1)}
	}
}

// DropRows lets go of the block's ratings (Rows and Test); its routing
// stays.
func (b *Block) DropRows() { b.Rows, b.Test = CSR{}, CSR{} }

// BalancedBounds cuts the rows of a CSR row pointer into at most parts
// contiguous ranges of about nnz/parts entries each, every range holding at
// least one row. It returns the range starts followed by the row count.
func BalancedBounds(ptr []int64, parts int) []int32 {
	n := len(ptr) - 1
	parts = max(min(parts, n), 1)
	total := ptr[n]
	return balancedFrom(n, parts, func(b int) int {
		target := balanceTarget(total, b, parts)
		return sort.Search(n, func(r int) bool { return ptr[r] >= target })
	})
}

// balanceTarget is the rating count before block b of parts.
func balanceTarget(total int64, b, parts int) int64 { return total * int64(b) / int64(parts) }

// balancedFrom applies BalancedBounds's rules to first(b), the first row
// whose start reaches block b's target (n when none does): each range
// keeps at least one row, and so does each range still to come.
func balancedFrom(n, parts int, first func(b int) int) []int32 {
	bounds := make([]int32, 0, parts+1)
	bounds = append(bounds, 0)
	for b := 1; b < parts; b++ {
		r := first(b)
		r = max(r, int(bounds[b-1])+1)
		r = min(r, n-(parts-b))
		bounds = append(bounds, int32(r))
	}
	return append(bounds, int32(n))
}

// testByUser is the test set as a CSR over users (Col: item index).
func testByUser(ds *Dataset) CSR {
	n := ds.Users.Len()
	ptr := make([]int64, n+1)
	for _, u := range ds.Test.U {
		ptr[u+1]++
	}
	for u := 0; u < n; u++ {
		ptr[u+1] += ptr[u]
	}
	// The test triplets are sorted by user, then item.
	return CSR{Ptr: ptr, Col: ds.Test.I, Val: ds.Test.R}
}

// planBlocks plans the blocks given by bounds: IDs and the other side's
// rows each needs for m (and the test ratings test, when it has rows).
func planBlocks(side Side, m, test CSR, ids []string, bounds, otherBounds []int32, nOther int) []*Block {
	blocks := make([]*Block, len(bounds)-1)
	seen := make([]bool, nOther)
	for b := range blocks {
		lo, hi := bounds[b], bounds[b+1]
		blk := &Block{Side: side, Index: b, Start: lo, IDs: ids[lo:hi:hi]}
		clear(seen)
		count := 0
		mark := func(cols []int32) {
			for _, c := range cols {
				if !seen[c] {
					seen[c] = true
					count++
				}
			}
		}
		mark(m.Col[m.Ptr[lo]:m.Ptr[hi]])
		if test.Rows() > 0 {
			mark(test.Col[test.Ptr[lo]:test.Ptr[hi]])
		}
		blk.Needed = make([]int32, 0, count)
		for c, ok := range seen {
			if ok {
				blk.Needed = append(blk.Needed, int32(c))
			}
		}
		blk.NeedPtr = make([]int32, len(otherBounds))
		for q := range otherBounds {
			blk.NeedPtr[q] = int32(sort.Search(len(blk.Needed), func(j int) bool { return blk.Needed[j] >= otherBounds[q] }))
		}
		blocks[b] = blk
	}
	return blocks
}

// sliceRows returns rows [lo, hi) of m with columns mapped through local
// (a copy) and m's values (shared: the values are the same, and a second
// copy of every rating's value would cost 4 bytes a rating at the
// partitioner's peak). A nil local is the identity — the block needs every
// row of the other side, so Needed positions are global indices — and the
// columns are shared too: a single-block side costs no copy at all.
func sliceRows(m CSR, lo, hi int32, local []int32) CSR {
	plo, phi := m.Ptr[lo], m.Ptr[hi]
	out := CSR{Val: m.Val[plo:phi:phi]}
	if lo == 0 {
		out.Ptr = m.Ptr[: hi+1 : hi+1] // m.Ptr[0] is 0
	} else {
		out.Ptr = make([]int64, hi-lo+1)
		for r := lo; r <= hi; r++ {
			out.Ptr[r-lo] = m.Ptr[r] - plo
		}
	}
	if local == nil {
		out.Col = m.Col[plo:phi:phi]
		return out
	}
	out.Col = make([]int32, phi-plo)
	for j, c := range m.Col[plo:phi] {
		out.Col[j] = local[c]
	}
	return out
}

// fillSend derives each block's send lists from the other side's needed
// lists: what block p of the other side needs from block q is exactly what
// q sends to p.
func fillSend(blocks, others []*Block) {
	for _, q := range blocks {
		q.SendPtr = make([]int32, len(others)+1)
		n := 0
		for _, p := range others {
			n += len(p.NeededFrom(q.Index))
		}
		q.Send = make([]int32, 0, n)
		for pi, p := range others {
			for _, g := range p.NeededFrom(q.Index) {
				q.Send = append(q.Send, g-q.Start)
			}
			q.SendPtr[pi+1] = int32(len(q.Send))
		}
	}
}
