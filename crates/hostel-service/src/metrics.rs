//! Prometheus metrics of this daemon: audited events by kind and outcome (auth failures and
//! bans among them), latency of create, start and exec, open sessions, and per-tenant usage as
//! the lifecycle check last saw it (so a scrape never waits on the engine).

use crate::Hostel;
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// The daemon's metric families.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    events: IntCounterVec,
    op_seconds: HistogramVec,
    sessions: IntGaugeVec,
    cpu_seconds: GaugeVec,
    memory_bytes: GaugeVec,
    disk_bytes: GaugeVec,
    network_bytes: GaugeVec,
    history_bytes: IntGauge,
}

impl Metrics {
    /// Fresh, registered families.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("hostel".into()), None)?;
        let m = Metrics {
            events: IntCounterVec::new(
                Opts::new("audit_events_total", "Audited events by kind and outcome."),
                &["kind", "outcome"],
            )?,
            op_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "operation_seconds",
                    "Latency of create, start and exec (until the command starts).",
                )
                .buckets(vec![0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
                &["op"],
            )?,
            sessions: IntGaugeVec::new(
                Opts::new(
                    "open_sessions",
                    "Open SSH sessions and API commands by tenant.",
                ),
                &["tenant"],
            )?,
            cpu_seconds: GaugeVec::new(
                Opts::new(
                    "tenant_cpu_seconds",
                    "CPU time used since the workspace started, at the last lifecycle check.",
                ),
                &["tenant"],
            )?,
            memory_bytes: GaugeVec::new(
                Opts::new(
                    "tenant_memory_bytes",
                    "Memory in use, at the last lifecycle check.",
                ),
                &["tenant"],
            )?,
            disk_bytes: GaugeVec::new(
                Opts::new(
                    "tenant_disk_bytes",
                    "Bytes used in the home, at the last lifecycle check.",
                ),
                &["tenant"],
            )?,
            network_bytes: GaugeVec::new(
                Opts::new(
                    "tenant_network_bytes",
                    "Network bytes received (rx) and sent (tx) since the workspace started, at \
                     the last lifecycle check.",
                ),
                &["tenant", "direction"],
            )?,
            history_bytes: IntGauge::new(
                "history_bytes",
                "Memory the usage history for charts takes.",
            )?,
            registry,
        };
        m.registry.register(Box::new(m.events.clone()))?;
        m.registry.register(Box::new(m.op_seconds.clone()))?;
        m.registry.register(Box::new(m.sessions.clone()))?;
        m.registry.register(Box::new(m.cpu_seconds.clone()))?;
        m.registry.register(Box::new(m.memory_bytes.clone()))?;
        m.registry.register(Box::new(m.disk_bytes.clone()))?;
        m.registry.register(Box::new(m.network_bytes.clone()))?;
        m.registry.register(Box::new(m.history_bytes.clone()))?;
        Ok(m)
    }

    /// Counts an audited event.
    pub(crate) fn event(&self, kind: &str, outcome: &str) {
        self.events.with_label_values(&[kind, outcome]).inc();
    }

    /// Records how long an operation took.
    pub(crate) fn observe(&self, op: &str, seconds: f64) {
        self.op_seconds.with_label_values(&[op]).observe(seconds);
    }

    /// Records a tenant's usage; `None` forgets that figure (e.g. the workspace is not running).
    pub(crate) fn usage(
        &self,
        tenant: &str,
        cpu_s: Option<f64>,
        mem: Option<u64>,
        disk: Option<u64>,
    ) {
        for (g, v) in [
            (&self.cpu_seconds, cpu_s),
            (&self.memory_bytes, mem.map(|m| m as f64)),
            (&self.disk_bytes, disk.map(|d| d as f64)),
        ] {
            match v {
                Some(v) => g.with_label_values(&[tenant]).set(v),
                None => {
                    let _ = g.remove_label_values(&[tenant]);
                }
            }
        }
    }
}

impl Metrics {
    /// Records a tenant's network counters (received, sent); `None` forgets them.
    pub(crate) fn network(&self, tenant: &str, bytes: Option<(u64, u64)>) {
        for (direction, v) in [("rx", bytes.map(|b| b.0)), ("tx", bytes.map(|b| b.1))] {
            match v {
                Some(v) => self
                    .network_bytes
                    .with_label_values(&[tenant, direction])
                    .set(v as f64),
                None => {
                    let _ = self.network_bytes.remove_label_values(&[tenant, direction]);
                }
            }
        }
    }
}

impl Hostel {
    /// The metrics in Prometheus text format. Only with `per_tenant` do they include the
    /// families labelled by tenant (sessions and usage), which name every tenant: the caller
    /// decides whether its client may see them (an API token may; no credential may not).
    pub fn metrics_text(&self, per_tenant: bool) -> String {
        {
            let open = self.open_sessions.lock().unwrap_or_else(|p| p.into_inner());
            self.metrics.sessions.reset();
            for (tenant, n) in open.iter() {
                self.metrics
                    .sessions
                    .with_label_values(&[tenant])
                    .set(i64::from(*n));
            }
        }
        self.metrics
            .history_bytes
            .set(i64::try_from(self.history_bytes()).unwrap_or(i64::MAX));
        let families: Vec<_> = self
            .metrics
            .registry
            .gather()
            .into_iter()
            .filter(|f| {
                per_tenant
                    || !f
                        .get_metric()
                        .iter()
                        .any(|m| m.get_label().iter().any(|l| l.name() == "tenant"))
            })
            .collect();
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&families, &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }
}
