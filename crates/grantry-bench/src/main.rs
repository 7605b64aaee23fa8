//! `grantry-bench`: seeds a dataset, starts Grantry in-process (or targets a running server),
//! drives one scenario (or all) over HTTP with keep-alive, and reports throughput, latency
//! percentiles, errors and peak RSS next to baselines measured in the same run.
//! See BENCHMARKS.md at the repository root.

mod load;
mod report;
mod scenarios;
mod seed;

use anyhow::Context;
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug, Clone)]
#[command(name = "grantry-bench", about = "Benchmark scenarios for Grantry (see BENCHMARKS.md).")]
pub struct Args {
    /// Scenario: b1 … b14, b1m (B1 with metrics on, then off), b1n (B1 with notifications on, then off), b5x2 (B5 reads on one node,
    /// then spread over two nodes sharing
    /// a PostgreSQL database), floor (HTTP floor: GET /health), sqlite (store baselines),
    /// seed (only create the dataset), or all.
    pub scenario: String,
    /// Concurrent clients (default: the scenario's own).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Measured time per scenario, e.g. 10s, 30s, 2m.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Warm-up before measuring (not recorded).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Dataset: small (1 %), medium (10 %) or large (1,000,000 assignments).
    #[arg(long, default_value = "small")]
    pub dataset: String,
    /// Scale of the large dataset (overrides --dataset), e.g. 0.25.
    #[arg(long)]
    pub scale: Option<f64>,
    /// Assignments of the dataset that expire at once for B7 (default: every 20th, 5 %);
    /// up to all of them, e.g. `--expiring 1000000` with the large dataset. Applies when
    /// the dataset is seeded.
    #[arg(long)]
    pub expiring: Option<usize>,
    /// Directory for the dataset; an existing seeded directory is reused.
    /// Default: a fresh temporary directory.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Seed and serve from this PostgreSQL database (postgres://USER@HOST:PORT/DB) instead
    /// of SQLite in --data-dir. The database must be empty, or seeded by an earlier run whose
    /// manifest is in --data-dir.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Target a running server instead of starting one (its database must be --data-dir).
    #[arg(long)]
    pub url: Option<String>,
    /// Process id of the server at --url, for its peak RSS.
    #[arg(long)]
    pub pid: Option<u32>,
    /// The `grantry` binary for b9/b10 (default: next to this program).
    #[arg(long)]
    pub grantry_bin: Option<PathBuf>,
    /// Send notification mail through this SMTP server (as `grantry serve --smtp-url`), for
    /// comparing a scenario with notifications on and off; without it mails are kept.
    #[arg(long, value_name = "URL", requires = "mail_from")]
    pub smtp_url: Option<String>,
    /// Sender of notification mail with --smtp-url.
    #[arg(long, value_name = "ADDRESS")]
    pub mail_from: Option<String>,
    /// Record no metrics in the in-process server (to compare a scenario with metrics on
    /// and off; `b1m` does both by itself).
    #[arg(long)]
    pub no_metrics: bool,
    /// Print the results as JSON (after the table).
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON results to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.parse().map_err(|_| format!("'{s}' is not a duration like 500ms, 30s or 2m"))?;
    Ok(Duration::from_secs_f64(v * mult))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    grantry_domain::metrics::set_enabled(!args.no_metrics);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("tokio runtime")?;
    rt.block_on(scenarios::main(args))
}
