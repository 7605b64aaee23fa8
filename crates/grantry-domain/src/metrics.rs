//! Process-wide metrics in Prometheus' text exposition format, kept cheap enough for the hot
//! path: counters and histogram buckets are atomics; labelled families take a lock only to
//! find their series. The HTTP layer, the store's writer and the background runner record
//! here; `GET /metrics` renders it with the gauges read at scrape time.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

/// Whether anything is recorded. On by default; `grantry-bench --no-metrics` turns it off
/// to measure what recording costs on the hot path.
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns recording on or off for the whole process.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Whether recording is on.
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}
use std::sync::{LazyLock, Mutex};

/// Seconds, for request latency and commit time: 0.25 ms to 10 s.
pub const SECONDS_BUCKETS: &[f64] =
    &[0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Callers per group commit.
pub const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];
/// Background job lag (due → run), seconds: 10 ms to 1 hour.
pub const LAG_BUCKETS: &[f64] = &[0.01, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0];

/// A histogram with fixed upper bounds.
pub struct Histogram {
    bounds: &'static [f64],
    /// Per bucket (not cumulative); the last is +Inf.
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    /// Sum of observations in millionths, so it stays an integer atomic.
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: f64) {
        if !enabled() {
            return;
        }
        let i = self.bounds.iter().position(|b| value <= *b).unwrap_or(self.bounds.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add((value.max(0.0) * 1e6) as u64, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Writes the `_bucket`, `_sum` and `_count` lines; `labels` is `k="v",…` or empty.
    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, bound) in self.bounds.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.buckets[self.bounds.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {cumulative}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        // The count is the buckets' total, so the two never disagree within one scrape.
        let _ = writeln!(out, "{name}_count{braces} {cumulative}");
    }
}

/// Counters keyed by two label values (for rarer events: job runs, deliveries). The label
/// sets are few, so a short list scanned without allocating beats a map keyed by owned
/// strings (this runs on the writer thread).
pub struct CounterFamily {
    labels: [&'static str; 2],
    values: Mutex<Vec<(String, String, u64)>>,
}

impl CounterFamily {
    pub const fn new(labels: [&'static str; 2]) -> CounterFamily {
        CounterFamily { labels, values: Mutex::new(Vec::new()) }
    }

    pub fn add(&self, first: &str, second: &str, n: u64) {
        if !enabled() {
            return;
        }
        let mut values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        match values.iter_mut().find(|(a, b, _)| a == first && b == second) {
            Some((_, _, v)) => *v += n,
            None => values.push((first.to_string(), second.to_string(), n)),
        }
    }

    pub fn get(&self, first: &str, second: &str) -> u64 {
        let values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        values.iter().find(|(a, b, _)| a == first && b == second).map_or(0, |(_, _, v)| *v)
    }

    fn render(&self, out: &mut String, name: &str) {
        let mut values = self.values.lock().unwrap_or_else(|e| e.into_inner()).clone();
        values.sort();
        for (a, b, v) in values {
            let _ = writeln!(
                out,
                "{name}{{{}=\"{}\",{}=\"{}\"}} {v}",
                self.labels[0],
                escape(&a),
                self.labels[1],
                escape(&b)
            );
        }
    }
}

/// A label value as the exposition format wants it.
pub fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// `# HELP` and `# TYPE` lines.
pub fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// What the store and the background runner record.
pub struct Metrics {
    pub writer_batch_size: Histogram,
    pub writer_commit_seconds: Histogram,
    pub writer_commit_failures: AtomicU64,
    /// Statements the writer sent (callers' and its own transaction control).
    pub writer_statements: AtomicU64,
    /// Round trips the writer made to PostgreSQL (statements sent together count once).
    pub writer_round_trips: AtomicU64,
    /// Callers' writes the writer ran.
    pub writer_jobs: AtomicU64,
    /// CPU time of the writer thread, in nanoseconds.
    pub writer_cpu_ns: AtomicU64,
    /// Job runs by kind and outcome (`ok`, `failed`).
    pub job_runs: CounterFamily,
    pub job_lag_seconds: Histogram,
    /// Jobs in the batch under way.
    pub jobs_running: AtomicI64,
    /// Resource role deliveries by origin system and outcome (`fulfilled`, `failed`).
    pub deliveries: CounterFamily,
    /// Outbound calls (callouts, webhooks, mail) by kind and outcome (`delivered`, `retry`,
    /// `refused`), one per attempt.
    pub outbound_calls: CounterFamily,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    writer_batch_size: Histogram::new(BATCH_BUCKETS),
    writer_commit_seconds: Histogram::new(SECONDS_BUCKETS),
    writer_commit_failures: AtomicU64::new(0),
    writer_statements: AtomicU64::new(0),
    writer_round_trips: AtomicU64::new(0),
    writer_jobs: AtomicU64::new(0),
    writer_cpu_ns: AtomicU64::new(0),
    job_runs: CounterFamily::new(["kind", "outcome"]),
    job_lag_seconds: Histogram::new(LAG_BUCKETS),
    jobs_running: AtomicI64::new(0),
    deliveries: CounterFamily::new(["origin_system", "outcome"]),
    outbound_calls: CounterFamily::new(["kind", "outcome"]),
});

/// The process's metrics.
pub fn global() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    /// Renders everything recorded here.
    pub fn render(&self, out: &mut String) {
        header(out, "grantry_writer_batch_size", "histogram", "Callers' writes committed together in one transaction.");
        self.writer_batch_size.render(out, "grantry_writer_batch_size", "");
        header(
            out,
            "grantry_writer_commit_seconds",
            "histogram",
            "Time to run and commit one group-commit transaction.",
        );
        self.writer_commit_seconds.render(out, "grantry_writer_commit_seconds", "");
        header(
            out,
            "grantry_writer_commit_failures_total",
            "counter",
            "Group-commit transactions that failed to commit.",
        );
        let _ = writeln!(
            out,
            "grantry_writer_commit_failures_total {}",
            self.writer_commit_failures.load(Ordering::Relaxed)
        );
        header(out, "grantry_writer_statements_total", "counter", "Statements the writer sent to the database.");
        let _ = writeln!(out, "grantry_writer_statements_total {}", self.writer_statements.load(Ordering::Relaxed));
        header(
            out,
            "grantry_writer_round_trips_total",
            "counter",
            "Round trips the writer made to PostgreSQL (statements sent together in one pipeline count once).",
        );
        let _ = writeln!(out, "grantry_writer_round_trips_total {}", self.writer_round_trips.load(Ordering::Relaxed));
        header(out, "grantry_writer_writes_total", "counter", "Callers' writes the writer ran.");
        let _ = writeln!(out, "grantry_writer_writes_total {}", self.writer_jobs.load(Ordering::Relaxed));
        header(out, "grantry_writer_cpu_seconds_total", "counter", "CPU time of the writer thread.");
        let _ = writeln!(
            out,
            "grantry_writer_cpu_seconds_total {:.6}",
            self.writer_cpu_ns.load(Ordering::Relaxed) as f64 / 1e9
        );
        header(out, "grantry_job_runs_total", "counter", "Background job runs by kind and outcome (ok, failed).");
        self.job_runs.render(out, "grantry_job_runs_total");
        header(out, "grantry_job_lag_seconds", "histogram", "Time from a job's due time to its run.");
        self.job_lag_seconds.render(out, "grantry_job_lag_seconds", "");
        header(out, "grantry_jobs_running", "gauge", "Background jobs in the batch under way.");
        let _ = writeln!(out, "grantry_jobs_running {}", self.jobs_running.load(Ordering::Relaxed).max(0));
        header(
            out,
            "grantry_deliveries_total",
            "counter",
            "Resource role deliveries by origin system and outcome (fulfilled, failed).",
        );
        self.deliveries.render(out, "grantry_deliveries_total");
        header(
            out,
            "grantry_outbound_calls_total",
            "counter",
            "Outbound call attempts (callout, webhook, mail) by outcome (delivered, retry, refused).",
        );
        self.outbound_calls.render(out, "grantry_outbound_calls_total");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_render_cumulative_buckets() {
        let h = Histogram::new(&[0.1, 1.0]);
        h.observe(0.05);
        h.observe(0.5);
        h.observe(0.5);
        h.observe(7.0);
        let mut out = String::new();
        h.render(&mut out, "x", "a=\"b\"");
        assert_eq!(
            out,
            "x_bucket{a=\"b\",le=\"0.1\"} 1\nx_bucket{a=\"b\",le=\"1\"} 3\nx_bucket{a=\"b\",le=\"+Inf\"} 4\nx_sum{a=\"b\"} 8.05\nx_count{a=\"b\"} 4\n"
        );
    }

    #[test]
    fn families_escape_label_values() {
        let f = CounterFamily::new(["kind", "outcome"]);
        f.add("a\"b", "ok", 2);
        f.add("a\"b", "ok", 1);
        let mut out = String::new();
        f.render(&mut out, "c");
        assert_eq!(out, "c{kind=\"a\\\"b\",outcome=\"ok\"} 3\n");
    }
}
