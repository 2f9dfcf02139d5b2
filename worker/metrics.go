package worker

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are a worker's Prometheus series, in a registry of its own so
// that several workers can live in one process (the all-in-one mode).
type metrics struct {
	reg           *prometheus.Registry
	bytesSent     *prometheus.CounterVec
	bytesReceived *prometheus.CounterVec
	rowsSolved    *prometheus.CounterVec
	phaseSeconds  *prometheus.HistogramVec
	ckptSeconds   prometheus.Histogram
	ckptBytes     prometheus.Counter
}

func newMetrics(workerID string) *metrics {
	labels := prometheus.Labels{"worker": workerID}
	m := &metrics{
		reg: prometheus.NewRegistry(),
		bytesSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cofactor_worker_bytes_sent_total", Help: "Factor bytes (frames) sent to other workers.", ConstLabels: labels,
		}, []string{"kind"}),
		bytesReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cofactor_worker_bytes_received_total", Help: "Factor bytes (frames) received from other workers.", ConstLabels: labels,
		}, []string{"kind"}),
		rowsSolved: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cofactor_worker_rows_solved_total", Help: "Factor rows solved.", ConstLabels: labels,
		}, []string{"side"}),
		phaseSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cofactor_worker_block_phase_seconds", Help: "Time to fetch and solve one block in a phase.", ConstLabels: labels,
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 18),
		}, []string{"side"}),
		ckptSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "cofactor_worker_checkpoint_seconds", Help: "Time to write this worker's blocks of one checkpoint.", ConstLabels: labels,
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 18),
		}),
		ckptBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cofactor_worker_checkpoint_bytes_total", Help: "Bytes of checkpoint files written.", ConstLabels: labels,
		}),
	}
	m.reg.MustRegister(m.bytesSent, m.bytesReceived, m.rowsSolved, m.phaseSeconds, m.ckptSeconds, m.ckptBytes,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// Registry is the worker's Prometheus registry (serve it on /metrics).
func (w *Worker) Registry() *prometheus.Registry { return w.metrics.reg }
