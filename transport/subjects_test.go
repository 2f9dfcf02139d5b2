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
	if got := HeartbeatSubject("w1"); got != "cofactor.hb.w1" {
		t.Errorf("HeartbeatSubject = %q", got)
	}
	if got := ReportSubject("w1"); got != "cofactor.coord.report.w1" {
		t.Errorf("ReportSubject = %q", got)
	}
	if got := WorkerInboxPrefix("w1"); got != "_INBOX.w1" {
		t.Errorf("WorkerInboxPrefix = %q", got)
	}
}

func TestSubjectWorker(t *testing.T) {
	for _, c := range []struct {
		subject, want string
		ok            bool
	}{
		{HeartbeatSubject("w1"), "w1", true},
		{ReportSubject("w-2_x"), "w-2_x", true},
		{SubjectHeartbeat, "", false},
		{SubjectReport, "", false},
		{"cofactor.hb.", "", false},
		{"cofactor.hb.w1.x", "", false},
		{"cofactor.coord.report.*", "", false},
		{WorkerCmdSubject("w1"), "", false},
		{"cofactor.hbw1", "", false},
	} {
		got, ok := SubjectWorker(c.subject)
		if got != c.want || ok != c.ok {
			t.Errorf("SubjectWorker(%q) = %q, %v; want %q, %v", c.subject, got, ok, c.want, c.ok)
		}
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
