//! Access as code: `grantry export` writes a server's governance configuration as YAML,
//! `grantry plan FILE` shows what applying it would change and who gains or loses access,
//! `grantry apply FILE` makes exactly those changes. All three speak Graph (v1.0) to a
//! server, so they work against any server with the same API.

pub mod apply;
pub mod client;
pub mod document;
pub mod live;
pub mod locate;
pub mod plan;

pub use client::{ConnectArgs, Graph};
pub use plan::{InputError, InputErrors, Plan};

use std::io::{IsTerminal, Write};

/// Progress on standard error, one overwritten line, only when it is a terminal (so logs
/// and pipes stay clean).
pub fn progress() -> impl Fn(&str) {
    let on_terminal = std::io::stderr().is_terminal();
    move |what: &str| {
        if on_terminal {
            let shown: String = what.chars().take(100).collect();
            let _ = write!(std::io::stderr(), "\r\x1b[2K{shown}");
            let _ = std::io::stderr().flush();
        }
    }
}

/// Clears the progress line.
pub fn progress_done() {
    if std::io::stderr().is_terminal() {
        let _ = write!(std::io::stderr(), "\r\x1b[2K");
    }
}

/// The file for the server's configuration, and its ids (kept aside) as YAML.
pub struct Export {
    pub yaml: String,
    pub ids: String,
}

pub async fn export(graph: &Graph, progress: &dyn Fn(&str)) -> anyhow::Result<Export> {
    let live = live::read(graph, progress).await?;
    Ok(Export { yaml: document::to_yaml(&live.doc)?, ids: live.ids_yaml()? })
}

/// Plans the file `file` with contents `text`.
pub async fn plan(graph: &Graph, file: &str, text: &str, progress: &dyn Fn(&str)) -> anyhow::Result<Plan> {
    plan::plan(graph, file, text, progress).await
}

/// Plans again and applies; with `expected`, only if the new plan is the reviewed one.
pub async fn apply(
    graph: &Graph,
    file: &str,
    text: &str,
    expected: Option<&str>,
    progress: &dyn Fn(&str),
) -> anyhow::Result<(Plan, apply::Applied)> {
    let plan = plan::plan(graph, file, text, progress).await?;
    let applied = apply::apply(graph, &plan, expected, progress).await?;
    Ok((plan, applied))
}
