package coordinator

import (
	"context"
	"encoding/json"
	"sort"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cofactor-ml/cofactor/internal/wire"
)

// onReport hands a worker's report to the leader's driver and acknowledges
// it. Followers stay silent, so the worker's request reaches the leader or
// is retried.
//
// A report whose payload names another worker than its subject gets no
// answer from any coordinator (see fromSender).
func (n *Node) onReport(m *nats.Msg) {
	var r wire.Report
	err := json.Unmarshal(m.Data, &r)
	if err == nil && !n.fromSender("report", m.Subject, r.Worker) {
		return
	}
	if !n.IsLeader() {
		return
	}
	ack := wire.Ack{OK: true}
	if err != nil {
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

// monitor runs on the leader: it registers workers that heartbeat and
// declares lost those that fall silent for WorkerTimeout. Liveness stays
// in memory: only changes (registered, lost) are committed, so an idle
// cluster appends nothing to the raft log.
func (n *Node) monitor(ctx context.Context) {
	became := time.Now()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		beats, ages := n.heard.heartbeats()
		register, lost := n.livenessChanges(beats, ages, time.Since(became))
		for _, id := range register {
			hb := beats[id]
			info := WorkerInfo{ID: id, CPUs: hb.CPUs, Memory: hb.Memory, GatherBytes: hb.GatherBytes, Boot: hb.Boot}
			if err := n.state.propose(ctx, &workerUpCmd{Worker: info}); err != nil {
				n.log.Warn("worker registration not committed", "worker", id, "err", err)
			} else {
				n.log.Info("worker registered", "worker", id, "cpus", hb.CPUs)
			}
		}
		for _, id := range lost {
			if err := n.state.propose(ctx, &workerLostCmd{Worker: id}); err != nil {
				n.log.Warn("worker loss not committed", "worker", id, "err", err)
			} else {
				n.log.Warn("worker lost", "worker", id, "silent_for", n.cfg.WorkerTimeout)
			}
		}
	}
}

// livenessChanges compares the heartbeats heard with the replicated
// worker table: the workers to register (new, back from lost, or
// restarted: a new boot holds nothing of what it was assigned) and the
// live ones to declare lost. A leader of led for less than WorkerTimeout
// declares no unheard worker lost: a new leader gives every worker one
// full timeout to be heard.
func (n *Node) livenessChanges(beats map[string]wire.Heartbeat, ages map[string]time.Duration, led time.Duration) (register, lost []string) {
	timeout := n.cfg.WorkerTimeout
	n.fsm.View(func(st *State) {
		for id, age := range ages {
			w, known := st.Workers[id]
			if known && w.State == WorkerDraining {
				continue // stays out of assignments until undrained
			}
			if age < timeout && (!known || w.State != WorkerAlive || w.Boot != beats[id].Boot) {
				register = append(register, id)
			}
		}
		for id, w := range st.Workers {
			if w.State != WorkerAlive {
				continue
			}
			age, heard := ages[id]
			if (heard && age >= timeout) || (!heard && led >= timeout) {
				lost = append(lost, id)
			}
		}
	})
	sort.Strings(register)
	sort.Strings(lost)
	return register, lost
}
