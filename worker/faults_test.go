package worker

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/cofactor-ml/cofactor/checkpoint"
)

func TestParseFaults(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want Faults
		bad  bool
	}{
		{spec: "", want: Faults{}},
		{spec: "dup=0.25,delay=40ms,seed=9", want: Faults{Dup: 0.25, Delay: 40 * time.Millisecond, Seed: 9}},
		{spec: "store-fail-every=3, store-full-after=10", want: Faults{StoreFailEvery: 3, StoreFullAfter: 10}},
		{spec: "dup=2", bad: true},
		{spec: "delay=-1s", bad: true},
		{spec: "store-fail-every=x", bad: true},
		{spec: "loss=0.1", bad: true},
		{spec: "dup", bad: true},
	} {
		got, err := ParseFaults(tc.spec)
		if tc.bad {
			if !errors.Is(err, ErrFaultSpec) {
				t.Errorf("%q: err %v, want ErrFaultSpec", tc.spec, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: %+v, %v; want %+v", tc.spec, got, err, tc.want)
		}
	}
}

func TestFaultStoreFailsWrites(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		f    Faults
		fail []bool // outcome of puts 1..6
	}{
		{Faults{StoreFailEvery: 3}, []bool{false, false, true, false, false, true}},
		{Faults{StoreFullAfter: 4}, []bool{false, false, false, false, true, true}},
	} {
		s := &faultStore{Store: checkpoint.DirStore{Root: t.TempDir()}, f: tc.f}
		for i, want := range tc.fail {
			err := s.Put(ctx, "f", []byte("x"))
			if got := err != nil; got != want || (got && !errors.Is(err, syscall.ENOSPC)) {
				t.Errorf("%+v: put %d: %v, want failure %v (ENOSPC)", tc.f, i+1, err, want)
			}
		}
	}
}
