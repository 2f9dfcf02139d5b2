package serve

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are a server's Prometheus series, in a registry of its own so
// that several servers can live in one process.
type metrics struct {
	reg          *prometheus.Registry
	requests     *prometheus.CounterVec
	fallbacks    *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	swaps        prometheus.Counter
	loadFailures prometheus.Counter
	info         *prometheus.GaugeVec
	rows         *prometheus.GaugeVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cofactor_serve_requests_total", Help: "HTTP requests answered, by endpoint and status code.",
		}, []string{"endpoint", "code"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cofactor_serve_fallback_total",
			Help: "Answers that fell back to the most popular items (a user the snapshot lacks, or a fold-in with no known item), by endpoint.",
		}, []string{"endpoint"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cofactor_serve_request_seconds", Help: "Time to answer a request, by endpoint.",
			Buckets: prometheus.ExponentialBuckets(25e-6, 2, 16),
		}, []string{"endpoint"}),
		swaps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cofactor_serve_snapshot_swaps_total", Help: "Snapshots put in service (the first load included).",
		}),
		loadFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cofactor_serve_snapshot_load_failures_total", Help: "Published snapshots that could not be opened and were skipped.",
		}),
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cofactor_serve_snapshot_info", Help: "1 for the snapshot in service, labelled with its ID and model.",
		}, []string{"snapshot", "model"}),
		rows: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cofactor_serve_model_rows", Help: "Rows of the snapshot in service, by side (users, items).",
		}, []string{"side"}),
	}
	m.reg.MustRegister(m.requests, m.fallbacks, m.latency, m.swaps, m.loadFailures, m.info, m.rows,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}
