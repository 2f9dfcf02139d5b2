package transport

import (
	"strings"
	"testing"
)

func TestSubjects(t *testing.T) {
	if got := WorkerCmdSubject("w-1"); got != "cofactor.w.w-1.cmd" {
		t.Errorf("WorkerCmdSubject = %q", got)
	}
	if got := WorkerRowsSubject("w_2"); got != "cofactor.w.w_2.rows" {
		t.Errorf("WorkerRowsSubject = %q", got)
	}
}

func TestValidID(t *testing.T) {
	tests := []struct {
		id      string
		wantErr string // "" = valid
	}{
		{"w1", ""},
		{"worker-07_b", ""},
		{"A", ""},
		{strings.Repeat("x", 64), ""},
		{"", "empty"},
		{strings.Repeat("x", 65), "65 bytes long, at most 64"},
		{"a.b", `byte '.' at offset 1`},
		{"a*", `byte '*' at offset 1`},
		{">", `byte '>' at offset 0`},
		{"a b", `byte ' ' at offset 1`},
		{"é", `offset 0`},
	}
	for _, tt := range tests {
		err := ValidID(tt.id)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("ValidID(%q) = %v, want nil", tt.id, err)
		case tt.wantErr != "" && err == nil:
			t.Errorf("ValidID(%q) = nil, want error containing %q", tt.id, tt.wantErr)
		case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
			t.Errorf("ValidID(%q) = %v, want error containing %q", tt.id, err, tt.wantErr)
		}
	}
}
