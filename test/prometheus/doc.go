// Package prometheus checks deploy/prometheus and deploy/grafana with
// Prometheus' own parsers: the alert rules as `promtool check rules` reads
// them (rulefmt: the YAML schema, every PromQL expression, every template
// of a label or annotation), and every query of the Grafana dashboard. It
// is a module of its own so that the Prometheus server's packages stay out
// of cofactor's go.mod; .ci/run runs it. test/docs checks the same files
// against the series cofactor exports.
package prometheus
