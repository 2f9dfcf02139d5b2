package coordinator

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// TestRaftLoggerLevels: raft's failed calls to a peer are WARN records,
// its storage failures stay ERROR, and records below the level are dropped.
func TestRaftLoggerLevels(t *testing.T) {
	t.Parallel()
	refused := errors.New("dial tcp 127.0.0.1:7001: connect: connection refused")
	for _, tc := range []struct {
		level hclog.Level
		msg   string
		args  []any
		want  string // slog level, "" when dropped
	}{
		{hclog.Error, "failed to heartbeat to", []any{"peer", "127.0.0.1:7001", "backoff time", "10ms", "error", refused}, "WARN"},
		{hclog.Error, "failed to appendEntries to", []any{"peer", "{Voter c2 127.0.0.1:7001}", "error", refused}, "WARN"},
		{hclog.Error, "failed to make requestVote RPC", []any{"target", "c2", "error", refused, "term", 3}, "WARN"},
		{hclog.Error, "failed to start pipeline replication to", []any{"peer", "c2", "error", refused}, "WARN"},
		{hclog.Error, "failed to pipeline appendEntries", []any{"peer", "c2", "error", io.EOF}, "WARN"},
		{hclog.Error, "target does not support pre-vote RPC, treating as granted", []any{"target", "c2"}, "WARN"},
		{hclog.Error, "failed to decode incoming command", []any{"error", io.EOF}, "WARN"},
		{hclog.Error, "failed to decode incoming command", []any{"error", errors.New("msgpack: invalid code")}, "ERROR"},
		{hclog.Error, "failed to persist vote", []any{"error", errors.New("disk full")}, "ERROR"},
		{hclog.Error, "failed to restore snapshot", []any{"error", errors.New("bad CRC")}, "ERROR"},
		{hclog.Warn, "failed to contact", []any{"server-id", "c2", "time", "1s"}, "WARN"},
		{hclog.Info, "entering follower state", nil, ""},
		{hclog.Debug, "appendEntries", nil, ""},
	} {
		var buf bytes.Buffer
		l := newRaftLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), hclog.Warn)
		l.Log(tc.level, tc.msg, tc.args...)
		out := buf.String()
		if tc.want == "" {
			if out != "" {
				t.Errorf("%s %q: logged %q below the level", tc.level, tc.msg, out)
			}
			continue
		}
		if !strings.Contains(out, "level="+tc.want+" ") || !strings.Contains(out, "logger=raft") {
			t.Errorf("%s %q: logged %q, want level=%s", tc.level, tc.msg, out, tc.want)
		}
		if tc.want == "WARN" && strings.Contains(out, "ERROR") {
			t.Errorf("%s %q: a routine record still says ERROR: %q", tc.level, tc.msg, out)
		}
	}
}

// TestRaftLoggerDerived: With, Named, Fmt and the standard-library writer
// keep the arguments, the name and the shared level.
func TestRaftLoggerDerived(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	root := newRaftLogger(slog.New(slog.NewTextHandler(&buf, nil)), hclog.Warn)
	l := root.Named("net").With("local", "c1")
	l.Warn("slow", "took", hclog.Fmt("%d ms", 12))
	if got := buf.String(); !strings.Contains(got, "logger=raft.net") || !strings.Contains(got, "local=c1") || !strings.Contains(got, `took="12 ms"`) {
		t.Errorf("derived record %q", got)
	}
	buf.Reset()
	root.SetLevel(hclog.Error)
	if l.IsWarn() || !l.IsError() || l.GetLevel() != hclog.Error {
		t.Error("a derived logger does not follow SetLevel of its root")
	}
	root.SetLevel(hclog.Info)
	root.StandardLogger(nil).Print("[ERR] failed to heartbeat to: peer=c2")
	root.StandardLogger(nil).Print("[INFO] plain")
	got := buf.String()
	if !strings.Contains(got, `level=WARN msg="failed to heartbeat to: peer=c2"`) || !strings.Contains(got, "level=INFO msg=plain") {
		t.Errorf("standard-library records %q", got)
	}
}
