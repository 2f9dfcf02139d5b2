package serve

// topK keeps the k best (score, item) pairs offered: higher score first,
// lower item index first among equal scores. It is a min-heap on that
// order, so its root is the worst pair kept.
type topK struct {
	k    int
	heap []Scored
}

func (t *topK) reset(k int) {
	t.k = k
	if cap(t.heap) < k {
		t.heap = make([]Scored, 0, k)
	}
	t.heap = t.heap[:0]
}

// below reports whether a ranks below b.
func below(a, b Scored) bool {
	if a.Score != b.Score {
		return a.Score < b.Score
	}
	return a.Item > b.Item
}

// full reports whether k pairs are kept; then floor is the worst of them.
func (t *topK) full() bool { return len(t.heap) == t.k }

func (t *topK) offer(s Scored) {
	h := t.heap
	if len(h) < t.k {
		h = append(h, s)
		for c := len(h) - 1; c > 0; {
			p := (c - 1) / 2
			if !below(h[c], h[p]) {
				break
			}
			h[c], h[p] = h[p], h[c]
			c = p
		}
		t.heap = h
		return
	}
	if !below(h[0], s) {
		return
	}
	h[0] = s
	t.down(0, len(h))
}

func (t *topK) down(p, n int) {
	h := t.heap
	for {
		c := 2*p + 1
		if c >= n {
			return
		}
		if c+1 < n && below(h[c+1], h[c]) {
			c++
		}
		if !below(h[c], h[p]) {
			return
		}
		h[c], h[p] = h[p], h[c]
		p = c
	}
}

// result returns the kept pairs best first, in a new slice. The heap is
// emptied.
func (t *topK) result() []Scored {
	h := t.heap
	for end := len(h) - 1; end > 0; end-- {
		h[0], h[end] = h[end], h[0]
		t.down(0, end)
	}
	// Each step moved the worst remaining pair to the end: best first.
	out := make([]Scored, len(h))
	copy(out, h)
	t.heap = h[:0]
	return out
}
