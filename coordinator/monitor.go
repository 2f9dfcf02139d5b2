package coordinator

import (
	"context"
	"encoding/json"
	"sort"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cofactor-ml/cofactor/internal/wire"
	"github.com/cofactor-ml/cofactor/transport"
)

// seenEvery is how often the leader records workers' last heartbeat in the
// replicated state (coarse, to keep the log small).
const seenEvery = 5 * time.Second

// onHeartbeat records a worker's heartbeat (every coordinator listens, so a
// new leader knows who is alive at once).
func (n *Node) onHeartbeat(m *nats.Msg) {
	var hb wire.Heartbeat
	if err := json.Unmarshal(m.Data, &hb); err != nil || transport.ValidID(hb.Worker) != nil {
		return
	}
	n.seenMu.Lock()
	n.seen[hb.Worker] = hb
	n.seenAt[hb.Worker] = time.Now()
	n.seenMu.Unlock()
}

// onReport hands a worker's report to the leader's driver and acknowledges
// it. Followers stay silent, so the worker's request reaches the leader or
// is retried.
func (n *Node) onReport(m *nats.Msg) {
	if !n.IsLeader() {
		return
	}
	var r wire.Report
	ack := wire.Ack{OK: true}
	if err := json.Unmarshal(m.Data, &r); err != nil {
		ack = wire.Ack{Error: "malformed report: " + err.Error()}
	} else {
		select {
		case n.reportCh <- r:
		default:
			return // the driver is behind: no ack, the worker retries
		}
	}
	b, _ := json.Marshal(ack)
	m.Respond(b)
}

// monitor runs on the leader: it registers workers that heartbeat, declares
// lost those that fall silent for WorkerTimeout, and records last-seen
// times every seenEvery.
func (n *Node) monitor(ctx context.Context) {
	became := time.Now()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	lastSeenCommit := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Now()
		n.seenMu.Lock()
		beats := make(map[string]wire.Heartbeat, len(n.seen))
		ages := make(map[string]time.Duration, len(n.seen))
		for id, hb := range n.seen {
			beats[id], ages[id] = hb, now.Sub(n.seenAt[id])
		}
		n.seenMu.Unlock()
		var register, lost, alive []string
		n.fsm.View(func(st *State) {
			for id, age := range ages {
				w, known := st.Workers[id]
				if known && w.State == WorkerDraining {
					continue // stays out of assignments until undrained
				}
				// New, back from lost, or restarted (a new boot: it holds
				// nothing of what it was assigned).
				if age < n.cfg.WorkerTimeout && (!known || w.State != WorkerAlive || w.Boot != beats[id].Boot) {
					register = append(register, id)
				}
			}
			for id, w := range st.Workers {
				if w.State != WorkerAlive {
					continue
				}
				age, heard := ages[id]
				// A new leader gives every worker a full timeout to be
				// heard before declaring it lost.
				silent := (heard && age >= n.cfg.WorkerTimeout) || (!heard && now.Sub(became) >= n.cfg.WorkerTimeout)
				if silent {
					lost = append(lost, id)
				} else {
					alive = append(alive, id)
				}
			}
		})
		sort.Strings(register)
		sort.Strings(lost)
		for _, id := range register {
			hb := beats[id]
			info := &WorkerInfo{ID: id, CPUs: hb.CPUs, Memory: hb.Memory, Boot: hb.Boot}
			if err := n.propose(ctx, Command{Type: cmdWorkerUp, Worker: info}); err != nil {
				n.log.Warn("worker registration not committed", "worker", id, "err", err)
			} else {
				n.log.Info("worker registered", "worker", id, "cpus", hb.CPUs)
			}
		}
		for _, id := range lost {
			if err := n.propose(ctx, Command{Type: cmdWorkerLost, Job: id}); err != nil {
				n.log.Warn("worker loss not committed", "worker", id, "err", err)
			} else {
				n.log.Warn("worker lost", "worker", id, "silent_for", n.cfg.WorkerTimeout)
			}
		}
		if now.Sub(lastSeenCommit) >= seenEvery && len(alive) > 0 {
			sort.Strings(alive)
			if err := n.propose(ctx, Command{Type: cmdWorkersSeen, Workers: alive}); err == nil {
				lastSeenCommit = now
			}
		}
	}
}
