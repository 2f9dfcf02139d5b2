package checkpoint

import (
	"fmt"
)

// Model is an opened snapshot: both factor matrices in global row order
// with their external IDs, the training rating count of every row, and,
// for a job's final snapshot, each user's training items. It is read-only
// and safe for concurrent use.
type Model struct {
	Manifest   Manifest
	Rank       int
	UserIDs    []string
	ItemIDs    []string
	UserCounts []int32
	ItemCounts []int32
	X          []float32 // users × Rank, row-major
	Y          []float32 // items × Rank, row-major

	seenPtr   []int64
	seenItems []int32
	seenVals  []float32 // nil unless every seen file holds ratings
	users     map[string]int32
	items     map[string]int32
}

// assemble concatenates blocks (in block order: the global order) into a
// model.
func assemble(m *Manifest, users, items []*Block, seen []*Seen) (*Model, error) {
	md := &Model{Manifest: *m, Rank: m.Rank}
	k := m.Rank
	md.X, md.UserIDs, md.UserCounts = make([]float32, 0, m.Users*k), make([]string, 0, m.Users), make([]int32, 0, m.Users)
	for _, b := range users {
		md.X = append(md.X, b.Factors...)
		md.UserIDs = append(md.UserIDs, b.IDs...)
		md.UserCounts = append(md.UserCounts, b.Counts...)
	}
	md.Y, md.ItemIDs, md.ItemCounts = make([]float32, 0, m.Items*k), make([]string, 0, m.Items), make([]int32, 0, m.Items)
	for _, b := range items {
		md.Y = append(md.Y, b.Factors...)
		md.ItemIDs = append(md.ItemIDs, b.IDs...)
		md.ItemCounts = append(md.ItemCounts, b.Counts...)
	}
	var err error
	if md.users, err = index(md.UserIDs, "user"); err != nil {
		return nil, err
	}
	if md.items, err = index(md.ItemIDs, "item"); err != nil {
		return nil, err
	}
	if seen[0] != nil {
		md.seenPtr = []int64{0}
		withValues := true
		for _, s := range seen {
			withValues = withValues && s != nil && s.Values != nil
		}
		if withValues {
			md.seenVals = make([]float32, 0, len(md.seenItems))
		}
		for b, s := range seen {
			if s == nil {
				return nil, fmt.Errorf("%w: seen items of user block %d missing", ErrCorrupt, b)
			}
			base := md.seenPtr[len(md.seenPtr)-1]
			for _, p := range s.Ptr[1:] {
				md.seenPtr = append(md.seenPtr, base+p)
			}
			md.seenItems = append(md.seenItems, s.Items...)
			if withValues {
				md.seenVals = append(md.seenVals, s.Values...)
			}
		}
		if len(md.seenPtr) != len(md.UserIDs)+1 {
			return nil, fmt.Errorf("%w: seen items cover %d users of %d", ErrCorrupt, len(md.seenPtr)-1, len(md.UserIDs))
		}
	}
	return md, nil
}

func index(ids []string, what string) (map[string]int32, error) {
	m := make(map[string]int32, len(ids))
	for i, id := range ids {
		if _, dup := m[id]; dup {
			return nil, fmt.Errorf("%w: %s ID %q appears twice", ErrCorrupt, what, id)
		}
		m[id] = int32(i)
	}
	return m, nil
}

// User returns the row of a user ID.
func (m *Model) User(id string) (int32, bool) { u, ok := m.users[id]; return u, ok }

// Item returns the row of an item ID.
func (m *Model) Item(id string) (int32, bool) { i, ok := m.items[id]; return i, ok }

// UserRow returns user u's factors (shared: do not modify).
func (m *Model) UserRow(u int32) []float32 { return m.X[int(u)*m.Rank : int(u+1)*m.Rank] }

// ItemRow returns item i's factors (shared: do not modify).
func (m *Model) ItemRow(i int32) []float32 { return m.Y[int(i)*m.Rank : int(i+1)*m.Rank] }

// HasSeen reports whether the snapshot holds each user's training items.
func (m *Model) HasSeen() bool { return m.seenPtr != nil }

// HasSeenValues reports whether the snapshot also holds each training
// item's rating (snapshots written before ratings were kept do not).
func (m *Model) HasSeenValues() bool { return m.seenVals != nil }

// SeenValues returns the ratings of user u's training items, in the order
// of Seen (nil without HasSeenValues).
func (m *Model) SeenValues(u int32) []float32 {
	if m.seenVals == nil {
		return nil
	}
	return m.seenVals[m.seenPtr[u]:m.seenPtr[u+1]]
}

// Mean is the global mean a model with biases adds to every score (0
// without biases).
func (m *Model) Mean() float32 {
	if !m.Manifest.Biases {
		return 0
	}
	return float32(m.Manifest.GlobalMean)
}

// Seen returns user u's training items, ascending (nil without HasSeen).
func (m *Model) Seen(u int32) []int32 {
	if m.seenPtr == nil {
		return nil
	}
	return m.seenItems[m.seenPtr[u]:m.seenPtr[u+1]]
}
