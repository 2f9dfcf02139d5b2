package partition

import (
	"slices"
	"strconv"
)

// Dict maps external IDs (arbitrary strings) to dense indices 0..Len()-1 and
// back. The zero value is not usable; call NewDict.
type Dict struct {
	index map[string]int32
	ids   []string
}

// NewDict returns an empty dictionary.
func NewDict() *Dict {
	return &Dict{index: make(map[string]int32)}
}

// Add returns the index of id, adding it if it is new. The bytes are copied
// only when the ID is new.
func (d *Dict) Add(id []byte) int32 {
	if i, ok := d.index[string(id)]; ok { // no allocation: the compiler special-cases this
		return i
	}
	s := string(id)
	i := int32(len(d.ids))
	d.index[s] = i
	d.ids = append(d.ids, s)
	return i
}

// Lookup returns the index of id and whether it is known.
func (d *Dict) Lookup(id []byte) (int32, bool) {
	i, ok := d.index[string(id)]
	return i, ok
}

// LookupString is Lookup for a string ID.
func (d *Dict) LookupString(id string) (int32, bool) {
	i, ok := d.index[id]
	return i, ok
}

// Len is the number of IDs.
func (d *Dict) Len() int { return len(d.ids) }

// ID returns the external ID of dense index i.
func (d *Dict) ID(i int32) string { return d.ids[i] }

// IDs returns the external IDs in index order. The slice is shared: do not
// modify it.
func (d *Dict) IDs() []string { return d.ids }

// DictFromIDs builds a dictionary whose index order is ids. It reports the
// first duplicate ID, if any.
func DictFromIDs(ids []string) (*Dict, bool) {
	d := &Dict{index: make(map[string]int32, len(ids)), ids: ids}
	for i, s := range ids {
		if _, dup := d.index[s]; dup {
			return nil, false
		}
		d.index[s] = int32(i)
	}
	return d, true
}

// canonical returns the order in which IDs keep[i]==true should be indexed:
// the positions of kept IDs, sorted by numeric value when every kept ID is a
// canonical decimal integer, otherwise by byte order. It is what makes dense
// indices independent of input order.
func (d *Dict) canonical(keep []bool) []int32 {
	order := make([]int32, 0, len(d.ids))
	numeric := true
	for i, s := range d.ids {
		if keep != nil && !keep[i] {
			continue
		}
		order = append(order, int32(i))
		if numeric && !isCanonicalInt(s) {
			numeric = false
		}
	}
	if numeric {
		vals := make([]int64, len(d.ids))
		for _, i := range order {
			vals[i], _ = strconv.ParseInt(d.ids[i], 10, 64)
		}
		slices.SortFunc(order, func(a, b int32) int {
			switch {
			case vals[a] < vals[b]:
				return -1
			case vals[a] > vals[b]:
				return 1
			}
			return 0
		})
	} else {
		slices.SortFunc(order, func(a, b int32) int {
			switch {
			case d.ids[a] < d.ids[b]:
				return -1
			case d.ids[a] > d.ids[b]:
				return 1
			}
			return 0
		})
	}
	return order
}

// isCanonicalInt reports whether s is a decimal int64 written without sign,
// leading zeros or spaces, so that numeric order is a total order on the
// strings themselves ("7" and "07" are different IDs and must not tie).
func isCanonicalInt(s string) bool {
	if s == "" || len(s) > 18 {
		return false
	}
	if s[0] == '0' && len(s) > 1 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
