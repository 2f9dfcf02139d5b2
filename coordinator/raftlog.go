package coordinator

// Raft's logger: hashicorp/raft logs through hclog; this file carries its
// records into the node's slog.Logger as structured records, and decides
// which of raft's errors are routine.
//
// Raft logs at ERROR every failed RPC to a peer: each heartbeat and
// appendEntries while a member restarts, each vote request while a
// candidate's peer is down. In a group that rolls its members one by one
// these are expected and stop by themselves once the peer answers, so they
// are logged at WARN; an operator alerting on ERROR then sees only what
// needs a person: a log store that cannot write, a snapshot that does not
// restore, a corrupt state file.
//
// It also holds what a restarted member needs from its raft log before it
// can describe its peers (peerHTTPAddrs).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// routineRaftErrors are the messages raft logs at ERROR when a call to a
// peer fails (the peer is restarting, partitioned or not yet listening).
// Raft retries each with a backoff; they are logged at WARN.
var routineRaftErrors = []string{
	"failed to appendEntries to",
	"failed to heartbeat to",
	"failed to make requestVote RPC",
	"failed to start pipeline replication to",
	"failed to pipeline appendEntries",
	"failed to send snapshot to",
	"peer has newer term, stopping replication",
	"target does not support pre-vote RPC",
}

// routineRaftError reports whether an ERROR record of raft is routine:
// a failed call to a peer, or a peer's connection dropped mid-command
// (the peer closed or restarted).
func routineRaftError(msg string, args []any) bool {
	for _, p := range routineRaftErrors {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	if strings.HasPrefix(msg, "failed to decode incoming command") {
		for i := 0; i+1 < len(args); i += 2 {
			if err, ok := args[i+1].(error); ok {
				s := err.Error()
				return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
					strings.Contains(s, "connection reset") || strings.Contains(s, "use of closed network connection")
			}
		}
	}
	return false
}

// raftLogger is an hclog.Logger writing to a slog.Logger. Loggers derived
// with With and Named share the level.
type raftLogger struct {
	l       *slog.Logger
	name    string
	level   *atomic.Int32 // an hclog.Level
	implied []any
}

// newRaftLogger returns raft's logger: records at level and above go to l,
// named "raft", with routine errors at WARN.
func newRaftLogger(l *slog.Logger, level hclog.Level) hclog.Logger {
	lv := new(atomic.Int32)
	lv.Store(int32(level))
	return &raftLogger{l: l, name: "raft", level: lv}
}

func (r *raftLogger) enabled(level hclog.Level) bool {
	return level != hclog.Off && level >= hclog.Level(r.level.Load())
}

// Log writes one record; hclog.Fmt arguments are formatted here.
func (r *raftLogger) Log(level hclog.Level, msg string, args ...any) {
	if !r.enabled(level) {
		return
	}
	var sl slog.Level
	switch {
	case level <= hclog.Debug:
		sl = slog.LevelDebug
	case level == hclog.Info:
		sl = slog.LevelInfo
	case level == hclog.Warn:
		sl = slog.LevelWarn
	case routineRaftError(msg, args):
		sl = slog.LevelWarn
	default:
		sl = slog.LevelError
	}
	attrs := make([]any, 0, 2+len(r.implied)+len(args))
	attrs = append(attrs, "logger", r.name)
	attrs = append(attrs, r.implied...)
	for _, a := range args {
		if f, ok := a.(hclog.Format); ok && len(f) > 0 {
			if s, ok := f[0].(string); ok {
				a = fmt.Sprintf(s, f[1:]...)
			}
		}
		attrs = append(attrs, a)
	}
	r.l.Log(context.Background(), sl, msg, attrs...)
}

func (r *raftLogger) Trace(msg string, args ...any) { r.Log(hclog.Trace, msg, args...) }
func (r *raftLogger) Debug(msg string, args ...any) { r.Log(hclog.Debug, msg, args...) }
func (r *raftLogger) Info(msg string, args ...any)  { r.Log(hclog.Info, msg, args...) }
func (r *raftLogger) Warn(msg string, args ...any)  { r.Log(hclog.Warn, msg, args...) }
func (r *raftLogger) Error(msg string, args ...any) { r.Log(hclog.Error, msg, args...) }

func (r *raftLogger) IsTrace() bool { return r.enabled(hclog.Trace) }
func (r *raftLogger) IsDebug() bool { return r.enabled(hclog.Debug) }
func (r *raftLogger) IsInfo() bool  { return r.enabled(hclog.Info) }
func (r *raftLogger) IsWarn() bool  { return r.enabled(hclog.Warn) }
func (r *raftLogger) IsError() bool { return r.enabled(hclog.Error) }

func (r *raftLogger) ImpliedArgs() []any { return r.implied }

func (r *raftLogger) With(args ...any) hclog.Logger {
	c := *r
	c.implied = append(append([]any(nil), r.implied...), args...)
	return &c
}

func (r *raftLogger) Name() string { return r.name }

func (r *raftLogger) Named(name string) hclog.Logger {
	c := *r
	c.name = r.name + "." + name
	return &c
}

func (r *raftLogger) ResetNamed(name string) hclog.Logger {
	c := *r
	c.name = name
	return &c
}

func (r *raftLogger) SetLevel(level hclog.Level) { r.level.Store(int32(level)) }
func (r *raftLogger) GetLevel() hclog.Level      { return hclog.Level(r.level.Load()) }

func (r *raftLogger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(r.StandardWriter(opts), "", 0)
}

// StandardWriter logs each write as one record at INFO, or at the level its
// "[ERROR]"-style prefix names.
func (r *raftLogger) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return stdRaftWriter{r}
}

type stdRaftWriter struct{ r *raftLogger }

func (w stdRaftWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	level := hclog.Info
	for _, x := range []struct {
		prefix string
		level  hclog.Level
	}{{"[TRACE]", hclog.Trace}, {"[DEBUG]", hclog.Debug}, {"[INFO]", hclog.Info}, {"[WARN]", hclog.Warn}, {"[ERR]", hclog.Error}, {"[ERROR]", hclog.Error}} {
		if rest, ok := strings.CutPrefix(msg, x.prefix); ok {
			msg, level = strings.TrimSpace(rest), x.level
			break
		}
	}
	w.r.Log(level, msg)
	return len(p), nil
}

// replayWait bounds how long a cluster status waits for a restarted member
// to replay its raft log before it describes its peers.
const replayWait = 2 * time.Second

// peerHTTPAddrs returns the HTTP address of every member of servers that
// the replicated state knows. A member learns its peers' addresses from
// the log (each join commits one), and a restarted member applies its log
// only once the leader tells it what is committed: until then it knows the
// members but not where to ask them. So while an address is missing and
// the log is not yet applied, it waits for the replay (at most replayWait,
// or until ctx ends) instead of calling live peers unreachable.
func (n *Node) peerHTTPAddrs(ctx context.Context, servers []raft.Server) map[string]string {
	deadline := time.NewTimer(replayWait)
	defer deadline.Stop()
	for {
		changed := n.fsm.Changed()
		addrs := map[string]string{}
		n.fsm.View(func(st *State) {
			for id, s := range st.Servers {
				addrs[id] = s.HTTPAddr
			}
		})
		missing := false
		for _, s := range servers {
			missing = missing || addrs[string(s.ID)] == ""
		}
		if !missing || n.raft.AppliedIndex() >= n.raft.LastIndex() {
			return addrs
		}
		select {
		case <-changed:
		case <-time.After(25 * time.Millisecond): // the applied index moves without a state change too
		case <-deadline.C:
			return addrs
		case <-ctx.Done():
			return addrs
		}
	}
}
