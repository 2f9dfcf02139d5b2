package partition

import (
	"slices"
	"strconv"
)

// Dict maps external IDs (arbitrary strings) to dense indices 0..Len()-1 and
// back. The zero value is not usable; call NewDict.
//
// IDs that are canonical decimal integers below numTableMax ("7", not "07"
// or "+7") — the usual case — are indexed by a table with one entry per
// value instead of the map: parsing a few digits and reading an array is
// several times cheaper than hashing the bytes and probing a map. Every
// other ID goes to the map. Which of the two holds an ID depends on the ID
// alone, so each lookup knows where to look.
type Dict struct {
	index map[string]int32
	num   []int32 // by value: index+1, 0 for absent; grown on demand
	ids   []string
}

// numTableMax bounds the values indexed by the table (a table covering
// them would take 64 MiB); larger IDs use the map.
const numTableMax = 1 << 24

// NewDict returns an empty dictionary.
func NewDict() *Dict {
	return &Dict{index: make(map[string]int32)}
}

// tableValue returns the value of id when it is a canonical decimal
// integer below numTableMax.
func tableValue[T string | []byte](id T) (int, bool) {
	if len(id) == 0 || len(id) > 8 || (id[0] == '0' && len(id) > 1) {
		return 0, false
	}
	v := 0
	for i := 0; i < len(id); i++ {
		d := int(id[i]) - '0'
		if d < 0 || d > 9 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, v < numTableMax
}

// Add returns the index of id, adding it if it is new. The bytes are copied
// only when the ID is new.
func (d *Dict) Add(id []byte) int32 {
	if v, ok := tableValue(id); ok {
		if v < len(d.num) {
			if i := d.num[v]; i > 0 {
				return i - 1
			}
		} else {
			d.growTable(v)
		}
		i := int32(len(d.ids))
		d.num[v] = i + 1
		d.ids = append(d.ids, string(id))
		return i
	}
	if i, ok := d.index[string(id)]; ok { // no allocation: the compiler special-cases this
		return i
	}
	s := string(id)
	i := int32(len(d.ids))
	d.index[s] = i
	d.ids = append(d.ids, s)
	return i
}

// addString is Add for an ID that is already a string (kept, not copied).
func (d *Dict) addString(id string) int32 {
	if v, ok := tableValue(id); ok {
		if v < len(d.num) {
			if i := d.num[v]; i > 0 {
				return i - 1
			}
		} else {
			d.growTable(v)
		}
		i := int32(len(d.ids))
		d.num[v] = i + 1
		d.ids = append(d.ids, id)
		return i
	}
	if i, ok := d.index[id]; ok {
		return i
	}
	i := int32(len(d.ids))
	d.index[id] = i
	d.ids = append(d.ids, id)
	return i
}

// growTable makes the table cover value v (< numTableMax).
func (d *Dict) growTable(v int) {
	n := max(2*len(d.num), v+1, 1024)
	n = min(n, numTableMax)
	t := make([]int32, n)
	copy(t, d.num)
	d.num = t
}

// Lookup returns the index of id and whether it is known.
func (d *Dict) Lookup(id []byte) (int32, bool) {
	if v, ok := tableValue(id); ok {
		if v < len(d.num) && d.num[v] > 0 {
			return d.num[v] - 1, true
		}
		return 0, false
	}
	i, ok := d.index[string(id)]
	return i, ok
}

// LookupString is Lookup for a string ID.
func (d *Dict) LookupString(id string) (int32, bool) {
	if v, ok := tableValue(id); ok {
		if v < len(d.num) && d.num[v] > 0 {
			return d.num[v] - 1, true
		}
		return 0, false
	}
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
	d := &Dict{index: make(map[string]int32), ids: ids}
	for i, s := range ids {
		if v, ok := tableValue(s); ok {
			if v >= len(d.num) {
				d.growTable(v)
			}
			if d.num[v] != 0 {
				return nil, false
			}
			d.num[v] = int32(i) + 1
			continue
		}
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
