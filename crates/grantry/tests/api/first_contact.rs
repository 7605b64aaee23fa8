//! What a newcomer meets first: the start-up lines of the real binary (where the data is,
//! the command that mints a token for it, the development clock), the index at `/`,
//! `/v1.0` and `/beta`, `serve --help` with its defaults, and no colour codes in logs that
//! do not go to a terminal.

use crate::binary::Process;
use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn grantry() -> Command {
    Command::new(env!("CARGO_BIN_EXE_grantry"))
}

/// The rest of the first JSON log message that starts with `prefix`.
fn logged_after(output: &str, prefix: &str) -> Option<String> {
    output
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|v| v["fields"]["message"].as_str().and_then(|m| m.strip_prefix(prefix)).map(str::to_string))
}

/// Splits a command line as printed by the server (words, or single-quoted words).
fn words(command: &str) -> Vec<String> {
    let (mut out, mut word, mut quoted, mut any) = (Vec::new(), String::new(), false, false);
    for c in command.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any {
                    out.push(std::mem::take(&mut word));
                }
                any = false;
            }
            _ => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(word);
    }
    out
}

#[tokio::test]
async fn the_start_up_lines_name_the_data_and_a_token_command_that_works() {
    let server = Process::spawn(&["--dev-clock"]);
    // The lines after the address line may still be on their way.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !server.output().contains("DEVELOPMENT CLOCK ON") {
        assert!(std::time::Instant::now() < deadline, "no start-up lines:\n{}", server.output());
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let output = server.output();
    let data = logged_after(&output, "data is kept in ").unwrap_or_else(|| panic!("no data line:\n{output}"));
    if on_postgres() {
        assert!(data.starts_with("postgres"), "{data}");
    } else {
        let dir = server.dir.path().display().to_string();
        assert_eq!(data, format!("sqlite:{dir}/grantry.db"));
    }
    // The command printed mints a token the running server accepts, run from anywhere.
    let command = logged_after(&output, "get a token for this server with: ")
        .unwrap_or_else(|| panic!("no token command:\n{output}"));
    let argv = words(&command);
    assert!(argv[0].ends_with("grantry"), "{command}");
    let elsewhere = tempfile::tempdir().unwrap();
    let minted = grantry().args(&argv[1..]).current_dir(elsewhere.path()).output().unwrap();
    assert!(minted.status.success(), "{command}: {}", String::from_utf8_lossy(&minted.stderr));
    assert!(!elsewhere.path().join("grantry-data").exists(), "the token command created a database");
    let token = String::from_utf8(minted.stdout).unwrap().trim().to_string();
    let resp = reqwest::Client::new()
        .get(format!("{}/v1.0/identityGovernance/entitlementManagement/catalogs", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "a token from the printed command is refused");
    // The development clock is announced loudly.
    let clock_line = output.lines().find(|l| l.contains("DEVELOPMENT CLOCK ON")).expect("a dev clock line");
    assert!(clock_line.contains("WARN"), "{clock_line}");
}

#[test]
fn text_logs_have_no_colour_codes_when_not_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    for no_color in [None, Some("1")] {
        let mut command = grantry();
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "text", "--data-dir"])
            .arg(dir.path())
            .env_remove("GRANTRY_LOG")
            .env_remove("GRANTRY_DATABASE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        match no_color {
            Some(v) => command.env("NO_COLOR", v),
            None => command.env_remove("NO_COLOR"),
        };
        let mut child = command.spawn().unwrap();
        let mut seen = String::new();
        for line in BufReader::new(child.stderr.take().unwrap()).lines().map_while(Result::ok) {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("get a token for this server with:") {
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(seen.contains("grantry is listening") && seen.contains("address=127.0.0.1:"), "{seen}");
        assert!(seen.contains("data is kept in sqlite:"), "{seen}");
        assert!(!seen.contains('\u{1b}'), "colour codes in a log that is not a terminal:\n{seen:?}");
    }
}

#[test]
fn serve_help_shows_every_default() {
    let out = grantry().args(["serve", "--help"]).env_remove("GRANTRY_DATABASE").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for expected in [
        format!("[default: {}]", grantry::config::DEFAULT_LISTEN),
        format!("[default: {}]", grantry::config::DEFAULT_DATA_DIR),
        "[default: sqlite:<data-dir>/grantry.db]".to_string(),
        "[default: http://<listen address>]".to_string(),
        "[default: text]".to_string(),
        format!("[default: {}]", grantry::config::DEFAULT_BODY_LIMIT),
        "[default: false]".to_string(),
        format!("[default: {}]", grantry::config::DEFAULT_READ_TIMEOUT.as_secs()),
        format!("[default: {}]", grantry::config::DEFAULT_SHUTDOWN_GRACE.as_secs()),
        "[default: none]".to_string(),
    ] {
        assert!(help.contains(&expected), "serve --help lacks {expected}:\n{help}");
    }
}

#[tokio::test]
async fn the_root_and_the_api_roots_answer_with_an_index() {
    let app = TestApp::spawn().await;
    for path in ["/", "/v1.0", "/beta"] {
        let resp = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "GET {path}");
        let index: Value = resp.json().await.unwrap();
        assert_eq!(index["service"], "Grantry", "{path}: {index}");
        // Every link in it answers without a token.
        let links = [
            &index["apiRoots"]["v1.0"],
            &index["apiRoots"]["beta"],
            &index["metadata"]["v1.0"],
            &index["metadata"]["beta"],
            &index["openapi"],
            &index["health"],
            &index["ready"],
        ];
        for link in links {
            let url = link.as_str().unwrap_or_else(|| panic!("{path}: {index}"));
            assert!(url.starts_with(&app.base), "{url}");
            let resp = app.client.get(url).send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "{url}");
        }
        assert!(index["documentation"]["graphApi"].as_str().unwrap().starts_with("https://"));
    }
}

#[test]
fn token_refuses_to_create_a_database() {
    let empty = tempfile::tempdir().unwrap();
    let data_dir = empty.path().join("data");
    let out = grantry()
        .args(["token", "--app", "x", "--data-dir"])
        .arg(&data_dir)
        .env_remove("GRANTRY_DATABASE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(message.contains(&data_dir.display().to_string()), "{message}");
    assert!(message.contains("--data-dir DIR or --database URL"), "{message}");
    assert!(!data_dir.exists(), "grantry token created {}", data_dir.display());

    // Run where no ./grantry-data exists, with the default data directory.
    let out = grantry()
        .args(["token", "--app", "x"])
        .current_dir(empty.path())
        .env_remove("GRANTRY_DATABASE")
        .env_remove("GRANTRY_DATA_DIR")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(message.contains("the default --data-dir ./grantry-data"), "{message}");
    assert!(!empty.path().join("grantry-data").exists());

    // An empty PostgreSQL database is not one a server uses.
    if let Some(db) = PgTestDatabase::create() {
        let out = grantry().args(["token", "--app", "x", "--database", &db.url]).output().unwrap();
        assert!(!out.status.success());
        let message = String::from_utf8_lossy(&out.stderr);
        assert!(message.contains("holds no Grantry data"), "{message}");
    }
}

#[tokio::test]
async fn a_token_from_another_grantry_is_refused_saying_so() {
    let here = TestApp::spawn().await;
    let elsewhere = TestApp::spawn().await;
    let foreign = elsewhere.app_token(&["EntitlementManagement.ReadWrite.All"]);
    let (status, body) = here.get(&foreign, &em("v1.0", "catalogs")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("another Grantry server"), "{message}");
    assert!(message.contains("grantry token"), "{message}");
}
