//! External components the tests run as Python child processes (aiosmtpd for mail,
//! scim2-server for provisioning): where their python is, whether it is installed, a free
//! loopback port, and starting one until it says it is ready.
//!
//! scripts/test installs each component into a cached virtual environment and names its
//! python in an environment variable. Without it the tests that need it say so and pass,
//! unless their `GRANTRY_REQUIRE_…` variable is set (scripts/test sets them, so CI never
//! skips them).

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

/// The longest a component may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// One Python component.
pub struct Component {
    /// What it is, for messages (`aiosmtpd`).
    pub name: &'static str,
    /// The module whose import proves it is installed.
    pub module: &'static str,
    /// The variable naming its python.
    pub python_env: &'static str,
    /// The cached virtual environment scripts/test installs it into (under ~/.cache).
    pub venv: &'static str,
    /// The variable that makes a missing component fail the tests instead of skipping them.
    pub require_env: &'static str,
    /// Which tests need it, for messages (`the mail tests`).
    pub needed_by: &'static str,
    /// Whether its standard error is dropped (a server logging every request).
    pub quiet: bool,
}

impl Component {
    pub fn python(&self) -> PathBuf {
        if let Some(p) = std::env::var_os(self.python_env) {
            return p.into();
        }
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir);
        cache.join(self.venv).join("bin").join("python")
    }

    /// Whether the component is installed. When it is not, says why and answers false, or
    /// fails when the tests are required.
    pub fn available(&self) -> bool {
        let ok = std::process::Command::new(self.python())
            .args(["-c", &format!("import {}", self.module)])
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            let why = format!(
                "{} need {} in the python at {} ({}); scripts/test installs it",
                self.needed_by,
                self.name,
                self.python().display(),
                self.python_env
            );
            let required = std::env::var(self.require_env).is_ok_and(|v| !v.is_empty() && v != "0");
            assert!(!required, "{why} ({} is set)", self.require_env);
            eprintln!("SKIPPED: {why}");
        }
        ok
    }

    /// Runs the python with `args` and waits (bounded) for its first line of output, which
    /// must contain `ready`. Returns the child (killed when dropped) and the rest of its
    /// output.
    pub async fn spawn<I, S>(&self, args: I, ready: &str) -> (Child, Lines<BufReader<ChildStdout>>)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut child = tokio::process::Command::new(self.python())
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(if self.quiet { std::process::Stdio::null() } else { std::process::Stdio::inherit() })
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{} starts: {e}", self.name));
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let first = tokio::time::timeout(START_TIMEOUT, lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("{} starts in time", self.name))
            .expect("its output is readable")
            .unwrap_or_else(|| panic!("{} says it is ready", self.name));
        assert!(first.contains(ready), "{}: {first}", self.name);
        (child, lines)
    }
}

/// A free loopback port (nothing listens on it when this returns).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
