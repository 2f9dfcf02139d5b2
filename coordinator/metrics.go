package coordinator

import (
	"strings"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/internal/wire"

	"net/http"
)

// metrics are a coordinator's Prometheus series, in a registry of its own.
type metrics struct {
	reg             *prometheus.Registry
	commitSeconds   prometheus.Histogram
	phaseSeconds    *prometheus.HistogramVec
	rowsSolved      prometheus.Counter
	bytesExchanged  prometheus.Counter
	checkpointSecs  prometheus.Histogram
	checkpointBytes prometheus.Gauge
	phaseTimeouts   prometheus.Counter
	forged          *prometheus.CounterVec
}

func newMetrics(n *Node) *metrics {
	labels := prometheus.Labels{"coordinator": n.cfg.ID}
	m := &metrics{
		reg: prometheus.NewRegistry(),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "cofactor_raft_commit_seconds", Help: "Time from proposing a command to its commit and application.",
			ConstLabels: labels, Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		phaseSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cofactor_phase_seconds", Help: "Wall time of committed phases, by side.",
			ConstLabels: labels, Buckets: prometheus.ExponentialBuckets(0.005, 2, 16),
		}, []string{"side"}),
		rowsSolved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cofactor_rows_solved_total", Help: "Factor rows solved in committed phases.", ConstLabels: labels,
		}),
		bytesExchanged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cofactor_bytes_exchanged_total", Help: "Factor bytes the workers exchanged in committed phases.", ConstLabels: labels,
		}),
		checkpointSecs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "cofactor_checkpoint_seconds", Help: "Time to write and commit a checkpoint.",
			ConstLabels: labels, Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}),
		checkpointBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cofactor_checkpoint_bytes", Help: "Size of the last committed checkpoint.", ConstLabels: labels,
		}),
		phaseTimeouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cofactor_phase_timeouts_total", Help: "Job steps that outlasted the phase timeout.", ConstLabels: labels,
		}),
		forged: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cofactor_forged_messages_dropped_total", Help: "Worker heartbeats and reports dropped because their payload names another worker than their subject.", ConstLabels: labels,
		}, []string{"kind"}),
	}
	for _, side := range []string{wire.SideUsers.String(), wire.SideItems.String()} {
		// Present from the start on every coordinator, not only once a
		// leader has observed a phase.
		m.phaseSeconds.WithLabelValues(side)
	}
	for _, kind := range []string{"heartbeat", "report"} {
		m.forged.WithLabelValues(kind)
	}
	m.reg.MustRegister(m.commitSeconds, m.phaseSeconds, m.rowsSolved, m.bytesExchanged,
		m.checkpointSecs, m.checkpointBytes, m.phaseTimeouts, m.forged, &stateCollector{n: n, labels: labels},
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// stateCollector reports, at each scrape, what the replicated state and
// raft say now.
type stateCollector struct {
	n      *Node
	labels prometheus.Labels
}

func (c *stateCollector) desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, c.labels)
}

var (
	raftStates  = []string{"follower", "candidate", "leader", "shutdown"}
	jobStates   = []job.State{job.StatePending, job.StateRunning, job.StateSucceeded, job.StateFailed, job.StateCancelled}
	workerState = []WorkerState{WorkerAlive, WorkerLost, WorkerDraining}
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	if n.raft == nil {
		return
	}
	state := strings.ToLower(n.raft.State().String())
	d := c.desc("cofactor_raft_state", "1 for this coordinator's current raft state.", "state")
	for _, s := range raftStates {
		v := 0.0
		if s == state {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, s)
	}
	leader := 0.0
	if n.raft.State() == raft.Leader {
		leader = 1
	}
	ch <- prometheus.MustNewConstMetric(c.desc("cofactor_raft_leader", "1 when this coordinator is the leader."), prometheus.GaugeValue, leader)
	ls := n.fsm.Stats()
	ch <- prometheus.MustNewConstMetric(c.desc("cofactor_raft_largest_entry_bytes", "Size of the largest raft log entry this coordinator applied since it started."), prometheus.GaugeValue, float64(ls.Largest))
	ch <- prometheus.MustNewConstMetric(c.desc("cofactor_raft_last_index", "Index of the last raft log entry."), prometheus.GaugeValue, float64(n.raft.LastIndex()))
	ch <- prometheus.MustNewConstMetric(c.desc("cofactor_raft_applied_index", "Index of the last entry applied to the state machine."), prometheus.GaugeValue, float64(n.raft.AppliedIndex()))

	jobs := map[job.State]int{}
	workers := map[WorkerState]int{}
	type jobProgress struct {
		job, model string
		done       float64
	}
	var running []jobProgress
	lastSuccess := map[string]float64{}   // model → Unix time of its newest succeeded job
	lastPublished := map[string]float64{} // model → Unix time its latest snapshot was published
	now := n.clock()
	type modelMetric struct {
		model, metric string
		v             float64
	}
	var models []modelMetric
	newest := map[string]string{} // model → the newest job with metrics
	n.fsm.View(func(st *State) {
		for _, j := range st.Jobs {
			jobs[j.State]++
			switch {
			case j.State == job.StateRunning:
				if p := j.Result(now).Progress; p != nil {
					running = append(running, jobProgress{j.ID, j.Spec.Model, p.Done})
				}
			case j.State == job.StateSucceeded && !j.Finished.IsZero():
				t := float64(j.Finished.UnixNano()) / 1e9
				lastSuccess[j.Spec.Model] = max(lastSuccess[j.Spec.Model], t)
				if j.SnapshotID != "" {
					// A job's final snapshot is published as it succeeds.
					lastPublished[j.Spec.Model] = max(lastPublished[j.Spec.Model], t)
				}
			}
		}
		for _, w := range st.Workers {
			workers[w.State]++
		}
		for _, id := range st.Order {
			if j := st.Jobs[id]; j.State == "running" || j.State == "succeeded" {
				newest[j.Spec.Model] = id
			}
		}
		for model, id := range newest {
			r := st.Jobs[id].Result(n.clock())
			for name, v := range map[string]*float64{"train_rmse": r.TrainRMSE, "test_rmse": r.TestRMSE, "precision_at_10": r.PrecisionAt10, "ndcg_at_10": r.NDCGAt10} {
				if v != nil {
					models = append(models, modelMetric{model, name, *v})
				}
			}
		}
	})
	dj := c.desc("cofactor_jobs", "Jobs by state.", "state")
	for _, s := range jobStates {
		ch <- prometheus.MustNewConstMetric(dj, prometheus.GaugeValue, float64(jobs[s]), s.String())
	}
	dw := c.desc("cofactor_workers", "Workers by state.", "state")
	for _, s := range workerState {
		ch <- prometheus.MustNewConstMetric(dw, prometheus.GaugeValue, float64(workers[s]), s.String())
	}
	dp := c.desc("cofactor_job_progress_ratio", "Share of a running job's iterations completed, 0 to 1.", "job", "model")
	for _, p := range running {
		ch <- prometheus.MustNewConstMetric(dp, prometheus.GaugeValue, p.done, p.job, p.model)
	}
	ds := c.desc("cofactor_job_last_success_timestamp_seconds", "Unix time the newest succeeded job of the model finished.", "model")
	for model, t := range lastSuccess {
		ch <- prometheus.MustNewConstMetric(ds, prometheus.GaugeValue, t, model)
	}
	dl := c.desc("cofactor_snapshot_last_published_timestamp_seconds", "Unix time the model's latest snapshot was published (its job's success).", "model")
	for model, t := range lastPublished {
		ch <- prometheus.MustNewConstMetric(dl, prometheus.GaugeValue, t, model)
	}
	dm := c.desc("cofactor_model_metric", "The newest running or finished job's metrics, by model.", "model", "metric")
	for _, m := range models {
		ch <- prometheus.MustNewConstMetric(dm, prometheus.GaugeValue, m.v, m.model, m.metric)
	}
}

// metricsHandler serves the registry.
func (n *Node) metricsHandler() http.Handler {
	return promhttp.HandlerFor(n.metrics.reg, promhttp.HandlerOpts{Registry: n.metrics.reg})
}

// Registry is the coordinator's Prometheus registry.
func (n *Node) Registry() *prometheus.Registry { return n.metrics.reg }
