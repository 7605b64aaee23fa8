//! Machine facts, result rows, the table and the JSON document.

use crate::load::Summary;
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu: String,
    pub mem_total_mib: u64,
    pub loadavg_start: String,
    pub loadavg_end: String,
    pub date: String,
}

impl Machine {
    pub fn probe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let mem_total_mib = status_kib("/proc/meminfo", "MemTotal:").unwrap_or(0) / 1024;
        #[allow(clippy::disallowed_methods)] // the report is dated by the wall clock
        let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
        Machine {
            nproc: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            cpu,
            mem_total_mib,
            loadavg_start: loadavg(),
            loadavg_end: String::new(),
            date,
        }
    }
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A `Key: N kB` line of a /proc status-like file, in KiB.
pub fn status_kib(path: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find(|l| l.starts_with(key))?.split_whitespace().nth(1)?.parse().ok()
}

/// Peak RSS (VmHWM) of a process in MiB (`None`: this process).
pub fn peak_rss_mib(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".into(),
    };
    status_kib(&path, "VmHWM:").map(|k| k as f64 / 1024.0)
}

/// Resets this process's peak RSS to its current RSS (Linux `clear_refs` 5).
pub fn reset_peak_rss(pid: Option<u32>) {
    let path = match pid {
        Some(p) => format!("/proc/{p}/clear_refs"),
        None => "/proc/self/clear_refs".into(),
    };
    let _ = std::fs::write(path, "5");
}

/// One measured line.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub scenario: String,
    pub what: String,
    pub concurrency: usize,
    #[serde(flatten)]
    pub summary: Summary,
    /// Throughput relative to the HTTP floor measured in the same run.
    pub vs_floor: Option<f64>,
    pub peak_rss_mib: Option<f64>,
    pub target: String,
    pub met: Option<bool>,
    pub notes: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub machine: Option<Machine>,
    pub dataset: Value,
    pub baselines: serde_json::Map<String, Value>,
    pub rows: Vec<Row>,
}

impl Report {
    pub fn print_table(&self) {
        if let Some(m) = &self.machine {
            println!(
                "machine: {} cores, {}, {} MiB; load {} → {}; {}",
                m.nproc, m.cpu, m.mem_total_mib, m.loadavg_start, m.loadavg_end, m.date
            );
        }
        println!("dataset: {}", self.dataset);
        for (k, v) in &self.baselines {
            println!("baseline {k}: {v}");
        }
        println!(
            "{:<5} {:<34} {:>4} {:>10} {:>8} {:>8} {:>8} {:>7} {:>7} {:>8}  {:<4} target",
            "scen", "what", "conc", "ops/s", "p50 ms", "p99 ms", "p99.9", "errors", "×floor", "RSS MiB", "met"
        );
        for r in &self.rows {
            println!(
                "{:<5} {:<34} {:>4} {:>10.0} {:>8.2} {:>8.2} {:>8.2} {:>7} {:>7} {:>8}  {:<4} {}{}",
                r.scenario,
                r.what,
                r.concurrency,
                r.summary.throughput,
                r.summary.p50_ms,
                r.summary.p99_ms,
                r.summary.p999_ms,
                r.summary.errors,
                r.vs_floor.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into()),
                r.peak_rss_mib.map(|v| format!("{v:.0}")).unwrap_or_else(|| "-".into()),
                match r.met {
                    Some(true) => "yes",
                    Some(false) => "NO",
                    None => "-",
                },
                r.target,
                if r.notes.is_empty() { String::new() } else { format!(" ({})", r.notes) },
            );
        }
    }
}

/// CPU time in clock ticks (USER_HZ): the whole machine's busy and total time, and the
/// time used by groups of processes (by command name, or by process id).
#[derive(Debug, Clone, Default)]
pub struct CpuSample {
    pub busy: u64,
    pub total: u64,
    /// Ticks per group, in the order the groups were asked for.
    pub groups: Vec<u64>,
}

/// A group of processes whose CPU time is measured.
pub enum Procs<'a> {
    /// Every process with this command name (e.g. `postgres`).
    Named(&'a str),
    Pid(u32),
    This,
}

/// utime + stime of `/proc/<pid>/stat`, and the command name.
fn proc_ticks(stat: &str) -> Option<(String, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let rest: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    // Fields 14 and 15 of the line; `rest` starts at field 3.
    let user: u64 = rest.get(11)?.parse().ok()?;
    let system: u64 = rest.get(12)?.parse().ok()?;
    Some((comm, user + system))
}

pub fn cpu_sample(groups: &[Procs]) -> CpuSample {
    let mut s = CpuSample { groups: vec![0; groups.len()], ..Default::default() };
    if let Some(line) = std::fs::read_to_string("/proc/stat").ok().and_then(|t| t.lines().next().map(str::to_string)) {
        let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
        s.total = v.iter().take(8).sum();
        // idle and iowait are the 4th and 5th values.
        s.busy = s.total.saturating_sub(v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0));
    }
    let named: Vec<(usize, &str)> = groups
        .iter()
        .enumerate()
        .filter_map(|(i, g)| match g {
            Procs::Named(n) => Some((i, *n)),
            _ => None,
        })
        .collect();
    if !named.is_empty()
        && let Ok(entries) = std::fs::read_dir("/proc")
    {
        for e in entries.flatten() {
            if !e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            if let Some((comm, ticks)) =
                std::fs::read_to_string(e.path().join("stat")).ok().as_deref().and_then(proc_ticks)
            {
                for (i, n) in &named {
                    if comm == *n {
                        s.groups[*i] += ticks;
                    }
                }
            }
        }
    }
    for (i, g) in groups.iter().enumerate() {
        let path = match g {
            Procs::Pid(p) => format!("/proc/{p}/stat"),
            Procs::This => "/proc/self/stat".into(),
            Procs::Named(_) => continue,
        };
        s.groups[i] = std::fs::read_to_string(path).ok().as_deref().and_then(proc_ticks).map(|(_, t)| t).unwrap_or(0);
    }
    s
}

impl CpuSample {
    /// Over the time from `before` to `self`: the machine's busy fraction and, per group,
    /// the cores it kept busy on average.
    pub fn since(&self, before: &CpuSample, wall: std::time::Duration) -> (f64, Vec<f64>) {
        let total = self.total.saturating_sub(before.total).max(1) as f64;
        let busy = self.busy.saturating_sub(before.busy) as f64 / total;
        // USER_HZ is 100 on Linux.
        let secs = wall.as_secs_f64().max(1e-9);
        let cores =
            self.groups.iter().zip(&before.groups).map(|(a, b)| a.saturating_sub(*b) as f64 / 100.0 / secs).collect();
        (busy, cores)
    }
}
