package job

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateInputs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		set  func(s *Spec)
		err  string // "" for valid
	}{
		{"input", func(s *Spec) { s.Input = "r.csv" }, ""},
		{"dataset", func(s *Spec) { s.Dataset = "ml" }, ""},
		{"dataset and test dataset", func(s *Spec) { s.Dataset, s.TestDataset, s.TestFraction = "ml", "ml-test", 0 }, ""},
		{"neither", func(s *Spec) {}, "no input file (--input)"},
		{"both", func(s *Spec) { s.Input, s.Dataset = "r.csv", "ml" }, "--input and --dataset cannot be combined"},
		{"dataset with a test file", func(s *Spec) { s.Dataset, s.Test, s.TestFraction = "ml", "t.csv", 0 }, "--test-dataset NAME, not --test FILE"},
		{"input with a test dataset", func(s *Spec) { s.Input, s.TestDataset, s.TestFraction = "r.csv", "t", 0 }, "--test-dataset goes with --dataset"},
		{"test dataset and fraction", func(s *Spec) { s.Dataset, s.TestDataset = "ml", "t" }, "--test-dataset and --test-fraction cannot be combined"},
		{"bad dataset name", func(s *Spec) { s.Dataset = "a/b" }, "dataset: invalid name"},
		{"bad test dataset name", func(s *Spec) { s.Dataset, s.TestDataset, s.TestFraction = "ml", "..", 0 }, "dataset: invalid name"},
	}
	for _, tc := range tests {
		s := DefaultSpec()
		tc.set(&s)
		err := s.Validate()
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrSpec)):
			t.Errorf("%s: error %v, want one with %q wrapping ErrSpec", tc.name, err, tc.err)
		}
	}
}

func TestStateText(t *testing.T) {
	for _, s := range []State{StatePending, StateRunning, StateSucceeded, StateFailed, StateCancelled} {
		b, err := s.MarshalText()
		var back State
		if err != nil || back.UnmarshalText(b) != nil || back != s || back.String() != string(b) {
			t.Errorf("%s: %q, %v, read back %q", s, b, err, back)
		}
		if s.Finished() != (s != StatePending && s != StateRunning) {
			t.Errorf("%s: finished %v", s, s.Finished())
		}
	}
	var s State
	if err := s.UnmarshalText([]byte("done")); !errors.Is(err, ErrState) {
		t.Errorf("an unknown state: %v", err)
	}
	if _, err := State("done").MarshalText(); !errors.Is(err, ErrState) {
		t.Errorf("marshalling an unknown state: %v", err)
	}
}
