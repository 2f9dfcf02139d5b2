package wire

import (
	"fmt"

	"github.com/cofactor-ml/cofactor/partition"
)

// Side names one side of the rating matrix in control messages, the raft
// log and the API: the user blocks or the item blocks. Its text form is
// "users" or "items"; the zero value, NoSide, is "" (a command or report
// that concerns no one side). partition.Side is the same notion as a
// number, for the binary block and frame encodings; Block and SideOf
// convert.
type Side string

// The sides.
const (
	NoSide    Side = ""
	SideUsers Side = "users"
	SideItems Side = "items"
)

// ErrSide is wrapped by UnmarshalText for a name that is not a side.
var ErrSide = fmt.Errorf("wire: not a side (want %q or %q)", SideUsers, SideItems)

// String returns "users", "items" or "".
func (s Side) String() string { return string(s) }

// Valid reports whether s is users or items.
func (s Side) Valid() bool { return s == SideUsers || s == SideItems }

// MarshalText implements encoding.TextMarshaler; it refuses an unknown
// side rather than write one that will not read back.
func (s Side) MarshalText() ([]byte, error) {
	if s != NoSide && !s.Valid() {
		return nil, fmt.Errorf("%w: %q", ErrSide, string(s))
	}
	return []byte(s), nil
}

// UnmarshalText implements encoding.TextUnmarshaler: "users", "items" or
// "" (no side).
func (s *Side) UnmarshalText(b []byte) error {
	v := Side(b)
	if v != NoSide && !v.Valid() {
		return fmt.Errorf("%w: %q", ErrSide, string(b))
	}
	*s = v
	return nil
}

// Other returns the other side (NoSide for NoSide).
func (s Side) Other() Side {
	switch s {
	case SideUsers:
		return SideItems
	case SideItems:
		return SideUsers
	}
	return NoSide
}

// Block returns the side as partition's number; ok is false for NoSide or
// an unknown side.
func (s Side) Block() (partition.Side, bool) {
	switch s {
	case SideUsers:
		return partition.Users, true
	case SideItems:
		return partition.Items, true
	}
	return 0, false
}

// SideOf returns partition's side as a Side.
func SideOf(p partition.Side) Side {
	if p == partition.Items {
		return SideItems
	}
	return SideUsers
}
