package wire

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/cofactor-ml/cofactor/partition"
)

func TestSideText(t *testing.T) {
	for _, tc := range []struct {
		json string
		want Side
		ok   bool
	}{
		{`"users"`, SideUsers, true},
		{`"items"`, SideItems, true},
		{`""`, NoSide, true},
		{`"Users"`, NoSide, false},
		{`"both"`, NoSide, false},
	} {
		var s Side
		err := json.Unmarshal([]byte(tc.json), &s)
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrSide)) || s != tc.want {
			t.Errorf("%s: %q, %v", tc.json, s, err)
			continue
		}
		if !tc.ok {
			continue
		}
		b, err := json.Marshal(s)
		if err != nil || string(b) != tc.json {
			t.Errorf("%q marshals to %s, %v", s, b, err)
		}
	}
	if _, err := json.Marshal(Side("both")); !errors.Is(err, ErrSide) {
		t.Errorf("marshalling an unknown side: %v", err)
	}
}

func TestSideConversions(t *testing.T) {
	for _, s := range []Side{SideUsers, SideItems} {
		p, ok := s.Block()
		if !ok || SideOf(p) != s || p.String() != s.String() {
			t.Errorf("%s: block side %v (%v)", s, p, ok)
		}
		if s.Other().Other() != s || s.Other() == s {
			t.Errorf("%s: other %s", s, s.Other())
		}
	}
	if _, ok := NoSide.Block(); ok {
		t.Error("NoSide has a block side")
	}
	if SideOf(partition.Items) != SideItems {
		t.Error("partition.Items is not SideItems")
	}
}
