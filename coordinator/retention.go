package coordinator

import (
	"context"
	"time"

	"github.com/cofactor-ml/cofactor/internal/job"
)

// retainEvery is how often the leader looks for finished jobs to drop.
var retainEvery = time.Minute

// pruneBatch bounds the jobs one prune command names, to keep the log
// entry small.
const pruneBatch = 100

// retention runs on the leader: it drops finished jobs beyond
// Config.RetainJobs or older than Config.RetainAge, with their logs, by
// committing prune commands.
func (n *Node) retention(ctx context.Context) {
	tick := time.NewTicker(retainEvery)
	defer tick.Stop()
	for {
		var ids []string
		n.fsm.View(func(st *State) { ids = st.expiredJobs(time.Now(), n.cfg.RetainJobs, n.cfg.RetainAge) })
		for len(ids) > 0 && ctx.Err() == nil {
			batch := ids[:min(len(ids), pruneBatch)]
			ids = ids[len(batch):]
			if err := n.state.propose(ctx, &pruneCmd{Jobs: batch}); err != nil {
				n.log.Warn("finished jobs not dropped", "jobs", len(batch), "err", err)
				break
			}
			n.log.Info("finished jobs dropped", "jobs", len(batch))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// expiredJobs lists, oldest first, the finished jobs beyond the newest
// keep finished ones or finished before now − age.
func (st *State) expiredJobs(now time.Time, keep int, age time.Duration) []string {
	var finished []*Job
	for _, id := range st.Order {
		if j := st.Jobs[id]; job.Finished(j.State) {
			finished = append(finished, j)
		}
	}
	var out []string
	for i, j := range finished {
		if len(finished)-i > keep || now.Sub(j.Finished) > age {
			out = append(out, j.ID)
		}
	}
	return out
}
