package transport

import (
	"fmt"
	"strconv"
	"strings"
)

const (
	// SubjectHeartbeat is the root of the heartbeat subjects: worker id
	// heartbeats (JSON) on [HeartbeatSubject](id), and every coordinator
	// subscribes to [HeartbeatSubject]("*").
	SubjectHeartbeat = "cofactor.hb"
	// SubjectReport is the root of the report subjects: worker id sends
	// its reports to the leader by request/reply on [ReportSubject](id).
	SubjectReport = "cofactor.coord.report"
	// InboxRoot is nats.go's default reply-subject prefix; a worker's
	// replies arrive under [WorkerInboxPrefix].
	InboxRoot = "_INBOX"
)

// HeartbeatSubject is the subject of worker workerID's heartbeats:
// "cofactor.hb.<id>" ("*" gives the coordinators' wildcard). The ID in
// the subject lets NATS permissions keep a worker from heartbeating in
// another's name; a coordinator drops a heartbeat whose payload names a
// different worker than its subject. The ID must pass [ValidID]; this
// function does not check it.
func HeartbeatSubject(workerID string) string {
	return SubjectHeartbeat + "." + workerID
}

// ReportSubject is the subject of worker workerID's reports:
// "cofactor.coord.report.<id>", with the same purpose as
// [HeartbeatSubject]'s ID.
func ReportSubject(workerID string) string {
	return SubjectReport + "." + workerID
}

// SubjectWorker returns the worker ID that ends a [HeartbeatSubject] or
// [ReportSubject] subject, and false when subject is neither or the ID
// is not valid.
func SubjectWorker(subject string) (string, bool) {
	for _, root := range []string{SubjectHeartbeat, SubjectReport} {
		if id, ok := strings.CutPrefix(subject, root+"."); ok && ValidID(id) == nil {
			return id, true
		}
	}
	return "", false
}

// WorkerInboxPrefix is the reply-subject prefix of worker workerID's
// connections ("_INBOX.<id>", set with nats.CustomInboxPrefix through
// [Security].InboxPrefix), so that a worker's own NATS identity may
// subscribe to its replies only, not to other workers'.
func WorkerInboxPrefix(workerID string) string {
	return InboxRoot + "." + workerID
}

// MaxIDLen is the longest worker or coordinator ID [ValidID] accepts.
const MaxIDLen = 64

// WorkerCmdSubject is the subject on which the leader sends commands to the
// worker workerID: "cofactor.w.<id>.cmd". The ID must pass [ValidID]; this
// function does not check it (IDs are checked where they enter the system,
// at registration).
func WorkerCmdSubject(workerID string) string {
	return "cofactor.w." + workerID + ".cmd"
}

// WorkerRowsSubject is the subject on which other workers request factor
// rows and partial Gram matrices from the worker workerID, which owns the
// blocks named in the request frames: "cofactor.w.<id>.rows". The ID must
// pass [ValidID]; this function does not check it.
func WorkerRowsSubject(workerID string) string {
	return "cofactor.w." + workerID + ".rows"
}

// WorkerIngestSubject is the subject on which the workers of one attempt
// at a job's distributed ingest send worker workerID their ingest
// messages: "cofactor.w.<id>.ingest.<job>.<attempt>". The worker listens
// on it only while the attempt lasts, so nothing of an abandoned attempt
// reaches a later one. The IDs must pass [ValidID] (job IDs are checked
// by the coordinator); this function does not check them.
func WorkerIngestSubject(workerID, jobID string, attempt uint64) string {
	return "cofactor.w." + workerID + ".ingest." + jobID + "." + strconv.FormatUint(attempt, 16)
}

// ValidID reports whether id may name a worker or coordinator: 1 to
// [MaxIDLen] characters, each an ASCII letter, digit, '_' or '-'. Such an
// ID is one NATS subject token without wildcards. The error says what is
// wrong.
func ValidID(id string) error {
	if id == "" {
		return fmt.Errorf("transport: invalid ID: empty")
	}
	if len(id) > MaxIDLen {
		return fmt.Errorf("transport: invalid ID %.16q...: %d bytes long, at most %d allowed", id, len(id), MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return fmt.Errorf("transport: invalid ID %q: byte %q at offset %d is not allowed (use A-Z, a-z, 0-9, '_' and '-')", id, c, i)
		}
	}
	return nil
}
