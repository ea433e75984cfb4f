package admission

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the webhook's Prometheus series, in a registry of its own
// (no process-wide default registry).
type metrics struct {
	reg            *prometheus.Registry
	decisions      *prometheus.CounterVec
	latency        *prometheus.HistogramVec
	verifyLatency  prometheus.Histogram
	cache          *prometheus.CounterVec
	registryErrors prometheus.Counter
	policyLoads    prometheus.Counter
	policyErrors   prometheus.Counter
	exemptions     prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modelattest_admission_decisions_total", Help: "Admission reviews answered, by endpoint and outcome (allowed, warned, denied).",
		}, []string{"endpoint", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "modelattest_admission_review_seconds", Help: "Time to answer one admission review.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"endpoint"}),
		verifyLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "modelattest_admission_verify_seconds", Help: "Time of one model verification against the registry (cache misses).",
			Buckets: prometheus.ExponentialBuckets(.001, 2.5, 12),
		}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modelattest_admission_cache_total", Help: "Cache lookups, by cache (decision, tag) and result (hit, miss).",
		}, []string{"cache", "result"}),
		registryErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "modelattest_admission_registry_errors_total", Help: "Models that could not be checked because of the registry (each is a deny).",
		}),
		policyLoads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "modelattest_admission_policy_loads_total", Help: "Policies loaded (the first and every changed one).",
		}),
		policyErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "modelattest_admission_policy_reload_errors_total", Help: "Policy files that did not load; the policy before stays in force.",
		}),
		exemptions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "modelattest_admission_exemptions_total", Help: "Admissions let through under a policy exemption.",
		}),
	}
	m.reg.MustRegister(m.decisions, m.latency, m.verifyLatency, m.cache, m.registryErrors, m.policyLoads, m.policyErrors, m.exemptions,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observe(endpoint, outcome string, d time.Duration) {
	m.decisions.WithLabelValues(endpoint, outcome).Inc()
	m.latency.WithLabelValues(endpoint).Observe(d.Seconds())
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
