//! HTTPS: `grantry cert --self-signed` writes a development CA and certificate; the server
//! given them with --tls-cert/--tls-key speaks HTTP/2 (by ALPN) and HTTP/1.1.

use crate::helpers::*;
use reqwest::StatusCode;

fn client(ca: &std::path::Path, http1: bool) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap();
    let builder = reqwest::Client::builder().use_rustls_tls().tls_built_in_root_certs(false).add_root_certificate(ca);
    let builder = if http1 { builder.http1_only() } else { builder };
    builder.build().unwrap()
}

#[tokio::test]
async fn https_speaks_http2_and_http1_with_the_generated_certificate() {
    let certs = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_grantry"))
        .args(["cert", "--self-signed", "--hostname", "localhost", "--hostname", "127.0.0.1", "--out"])
        .arg(certs.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(certs.path().join("key.pem")).unwrap().permissions().mode() & 0o777, 0o600);

    let tls = grantry::config::Tls { cert: certs.path().join("cert.pem"), key: certs.path().join("key.pem") };
    let app = TestApp::spawn_with(Options { tls: Some(tls), ..Options::default() }).await;
    assert!(app.base.starts_with("https://127.0.0.1:"), "{}", app.base);
    for (http1, version) in [(false, reqwest::Version::HTTP_2), (true, reqwest::Version::HTTP_11)] {
        let resp = client(&certs.path().join("ca.pem"), http1)
            .get(app.url(&format!("/v1.0/{EM}/catalogs")))
            .bearer_auth(&app.admin)
            .send()
            .await
            .expect("HTTPS request");
        assert_eq!(resp.version(), version);
        assert_eq!(resp.status(), StatusCode::OK);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert!(body["@odata.context"].as_str().unwrap().starts_with("https://127.0.0.1:"), "{body}");
    }
    // A client that does not trust the development CA is refused by its own TLS check.
    let untrusting = reqwest::Client::builder().use_rustls_tls().build().unwrap();
    assert!(untrusting.get(app.url("/health")).send().await.is_err());
    // Plain HTTP to the HTTPS port gets no answer.
    let plain = app.base.replace("https://", "http://");
    assert!(reqwest::get(format!("{plain}/health")).await.map(|r| r.status() != StatusCode::OK).unwrap_or(true));
}

#[tokio::test]
async fn a_missing_or_mismatched_certificate_stops_the_start_with_a_reason() {
    let certs = tempfile::tempdir().unwrap();
    grantry::tls::self_signed(&["localhost".to_string()], certs.path()).unwrap();
    let other = tempfile::tempdir().unwrap();
    grantry::tls::self_signed(&["localhost".to_string()], other.path()).unwrap();
    let base = Options::default();
    for (tls, says) in [
        (grantry::config::Tls { cert: certs.path().join("nope.pem"), key: certs.path().join("key.pem") }, "nope.pem"),
        (
            grantry::config::Tls { cert: certs.path().join("cert.pem"), key: other.path().join("key.pem") },
            "do not form",
        ),
        (
            grantry::config::Tls { cert: certs.path().join("key.pem"), key: certs.path().join("key.pem") },
            "no certificate",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = grantry::config::Config {
            tls: Some(tls),
            body_limit: base.body_limit,
            read_timeout: base.read_timeout,
            ..grantry::config::Config::for_test(
                grantry::config::Database::Sqlite(dir.path().join("grantry.db")),
                dir.path().join("keys"),
            )
        };
        let e = grantry::start(config).await.err().expect("refused");
        assert!(format!("{e:#}").contains(says), "{says}: {e:#}");
    }
}
