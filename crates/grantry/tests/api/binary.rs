//! The `grantry` binary as a separate process, for what only a process shows: its memory,
//! its log, signals and its exit status. It listens on a port chosen by the system (read
//! back from its log) and uses a fresh database: SQLite in a temporary directory, or a
//! PostgreSQL database of its own when the suite runs on PostgreSQL.

#![allow(dead_code)]

use crate::helpers::PgTestDatabase;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

pub struct Process {
    child: Child,
    pub base: String,
    /// `--data-dir DIR` or `--database URL`: what `grantry token` needs to find the database.
    pub db_args: Vec<String>,
    log: Arc<Mutex<String>>,
    pub dir: tempfile::TempDir,
    _pg: Option<PgTestDatabase>,
}

impl Process {
    /// Starts `grantry serve` with `extra` arguments and waits until it listens.
    pub fn spawn(extra: &[&str]) -> Process {
        let dir = tempfile::tempdir().expect("temp dir");
        let pg = PgTestDatabase::create();
        let db_args = match &pg {
            Some(db) => vec![
                "--database".to_string(),
                db.url.clone(),
                "--key-dir".to_string(),
                dir.path().join("keys").display().to_string(),
            ],
            None => vec!["--data-dir".to_string(), dir.path().display().to_string()],
        };
        let (child, base, log) = launch(&db_args, extra);
        Process { child, base, db_args, log, dir, _pg: pg }
    }

    /// Starts the server again on the same database (after it exited), with `extra` arguments.
    pub fn restart(&mut self, extra: &[&str]) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, base, log) = launch(&self.db_args, extra);
        (self.child, self.base, self.log) = (child, base, log);
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process wrote so far (stdout and stderr).
    pub fn output(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Runs `grantry token` against this server's database.
    pub fn token(&self, args: &[&str]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_grantry"))
            .arg("token")
            .args(&self.db_args)
            .args(args)
            .output()
            .expect("grantry token runs");
        assert!(out.status.success(), "grantry token failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// Peak resident memory of the process so far, in KiB (Linux's `VmHWM`).
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("/proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc status")
    }

    /// Sends `signal` (e.g. `TERM`) to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").arg(format!("-{signal}")).arg(self.pid().to_string()).status().unwrap();
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits for the process to exit (killing it after `limit`).
    #[allow(clippy::disallowed_methods)] // polls the child's exit status, not the server's work
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("grantry did not exit within {limit:?}; its output:\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Starts `grantry serve` on the database named by `db_args` and waits until it reports
/// the address it listens on.
fn launch(db_args: &[String], extra: &[&str]) -> (Child, String, Arc<Mutex<String>>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_grantry"))
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
        .args(db_args)
        .args(extra)
        .env_remove("GRANTRY_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the grantry binary starts");
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = mpsc::channel::<String>();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let (log, tx) = (log.clone(), tx.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                log.lock().unwrap().push_str(&format!("{line}\n"));
                let _ = tx.send(line);
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let address = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                    && let Some(address) = v["fields"]["address"].as_str()
                {
                    break address.to_string();
                }
            }
            Err(_) => {
                let _ = child.kill();
                panic!("grantry did not report its address; its output:\n{}", log.lock().unwrap());
            }
        }
    };
    (child, format!("http://{address}"), log)
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
