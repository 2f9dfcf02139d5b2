package coordinator

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cofactor-ml/cofactor/internal/wire"
	"github.com/cofactor-ml/cofactor/transport"
)

// liveness is what this coordinator heard of the workers: each one's last
// heartbeat and when it arrived (local clock). Every coordinator listens,
// so a new leader knows at once who is alive; none of it is replicated.
type liveness struct {
	mu   sync.Mutex
	seen map[string]wire.Heartbeat
	at   map[string]time.Time
}

func newLiveness() *liveness {
	return &liveness{seen: map[string]wire.Heartbeat{}, at: map[string]time.Time{}}
}

// onHeartbeat records a worker's heartbeat, unless its payload names
// another worker than its subject.
func (n *Node) onHeartbeat(m *nats.Msg) {
	var hb wire.Heartbeat
	if err := json.Unmarshal(m.Data, &hb); err != nil || transport.ValidID(hb.Worker) != nil {
		return
	}
	if !n.fromSender("heartbeat", m.Subject, hb.Worker) {
		return
	}
	n.heard.record(hb)
}

// fromSender reports whether the worker a heartbeat or report names in
// its payload is the one its subject names. A worker's own NATS identity
// may publish only on its own subjects, so a mismatch is a worker (or a
// holder of the shared worker role) speaking in another's name: the
// message is dropped, logged and counted.
func (n *Node) fromSender(kind, subject, worker string) bool {
	id, ok := transport.SubjectWorker(subject)
	if ok && id == worker {
		return true
	}
	n.metrics.forged.WithLabelValues(kind).Inc()
	n.log.Warn("dropped a worker message whose payload names another worker than its subject",
		"kind", kind, "subject", subject, "payload_worker", worker)
	return false
}

// record stores hb as its worker's last heartbeat.
func (l *liveness) record(hb wire.Heartbeat) {
	l.mu.Lock()
	l.seen[hb.Worker] = hb
	l.at[hb.Worker] = time.Now()
	l.mu.Unlock()
}

// heartbeats returns the last heartbeat of each worker heard and its age.
func (l *liveness) heartbeats() (map[string]wire.Heartbeat, map[string]time.Duration) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	beats := make(map[string]wire.Heartbeat, len(l.seen))
	ages := make(map[string]time.Duration, len(l.seen))
	for id, hb := range l.seen {
		beats[id], ages[id] = hb, now.Sub(l.at[id])
	}
	return beats, ages
}

// lastSeen is when this coordinator last heard worker id's heartbeat.
func (l *liveness) lastSeen(id string) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.at[id]
	return t.UTC(), ok
}
