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

// onHeartbeat records a worker's heartbeat.
func (l *liveness) onHeartbeat(m *nats.Msg) {
	var hb wire.Heartbeat
	if err := json.Unmarshal(m.Data, &hb); err != nil || transport.ValidID(hb.Worker) != nil {
		return
	}
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
