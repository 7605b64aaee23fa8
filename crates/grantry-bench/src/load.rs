//! The closed-loop load driver: `concurrency` workers each run one operation after another
//! for a fixed time (after a warm-up that is not recorded), optionally paced to a rate.

use serde::Serialize;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What one operation reported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// The answer the scenario expects.
    Ok,
    /// Anything else (wrong status, transport error).
    Error,
}

#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub concurrency: usize,
    pub duration: Duration,
    pub warmup: Duration,
    /// Total operations per second over all workers, if paced.
    pub rate: Option<f64>,
}

/// Latencies (microseconds) and counts of one run, or of one class of operations in it.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    pub latencies_us: Vec<u32>,
    pub errors: u64,
}

impl Samples {
    pub fn merge(&mut self, other: Samples) {
        self.latencies_us.extend(other.latencies_us);
        self.errors += other.errors;
    }
    pub fn summary(mut self, elapsed: Duration) -> Summary {
        self.latencies_us.sort_unstable();
        let n = self.latencies_us.len();
        let q = |p: f64| -> f64 {
            if n == 0 {
                return 0.0;
            }
            let i = ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
            self.latencies_us[i] as f64 / 1000.0
        };
        Summary {
            ops: n as u64,
            errors: self.errors,
            secs: elapsed.as_secs_f64(),
            throughput: n as f64 / elapsed.as_secs_f64().max(1e-9),
            p50_ms: q(0.50),
            p99_ms: q(0.99),
            p999_ms: q(0.999),
            max_ms: q(1.0),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub ops: u64,
    pub errors: u64,
    pub secs: f64,
    pub throughput: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

/// Runs `op(worker, n)` (`n` counts every call over all workers, starting at 0) under
/// `spec`; `op` returns the outcome and a class index (0 for single-class scenarios) whose
/// samples are kept apart. Returns one `Samples` per class and the measured time.
pub async fn run<F, Fut>(spec: &LoadSpec, classes: usize, op: F) -> (Vec<Samples>, Duration)
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = (Outcome, usize)> + Send,
{
    let op = Arc::new(op);
    let counter = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let measure_from = start + spec.warmup;
    let end = measure_from + spec.duration;
    let interval = spec.rate.map(|r| Duration::from_secs_f64(spec.concurrency as f64 / r.max(0.001)));
    let mut tasks = Vec::new();
    for w in 0..spec.concurrency {
        let (op, counter) = (op.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let mut samples = vec![Samples::default(); classes.max(1)];
            let mut next = Instant::now();
            loop {
                if let Some(iv) = interval {
                    next += iv;
                    let now = Instant::now();
                    if next > now {
                        tokio::time::sleep(next - now).await;
                    } else if now - next > iv * 4 {
                        next = now; // fell behind: do not burst to catch up
                    }
                }
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let (outcome, class) = op(w, n).await;
                if t0 >= measure_from {
                    let s = &mut samples[class.min(classes.max(1) - 1)];
                    match outcome {
                        Outcome::Ok => s.latencies_us.push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32),
                        Outcome::Error => s.errors += 1,
                    }
                }
            }
            samples
        }));
    }
    let mut all = vec![Samples::default(); classes.max(1)];
    for t in tasks {
        if let Ok(s) = t.await {
            for (a, b) in all.iter_mut().zip(s) {
                a.merge(b);
            }
        }
    }
    let elapsed = Instant::now().saturating_duration_since(measure_from).min(spec.duration + Duration::from_secs(5));
    (all, elapsed)
}
