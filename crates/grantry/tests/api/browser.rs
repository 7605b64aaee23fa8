//! The portal in a real browser: headless Chromium from Debian's packages driven through
//! chromedriver's W3C WebDriver protocol (a few JSON calls over the tests' HTTP client).
//!
//! scripts/test installs `chromium` and `chromium-driver` when missing and sets
//! GRANTRY_REQUIRE_BROWSER_TESTS, so CI never skips these tests silently; elsewhere they
//! say why and pass when the browser is missing. Every WebDriver call is bounded in time.
//! Each main page is checked with axe-core (installed by scripts/test from npm into a cache
//! directory; GRANTRY_BROWSER_NODE_MODULES names its node_modules): no critical
//! accessibility violation is allowed. Screenshots of each main page go to GRANTRY_SCREENSHOT_DIR (default: a `grantry-
//! screenshots` directory under the system's temporary directory); the committed ones are in
//! docs/screenshots/.

use crate::helpers::*;
use crate::portal::create_demo;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The longest one WebDriver call (a page load, a click that submits a form) may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long chromedriver may take to start answering.
const DRIVER_START: Duration = Duration::from_secs(30);
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process, killed when dropped.
pub struct Driver {
    child: std::process::Child,
    url: String,
    http: reqwest::Client,
    _profiles: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn found(program: &str) -> bool {
    std::process::Command::new(program).arg("--version").output().is_ok_and(|o| o.status.success())
}

impl Driver {
    /// Starts chromedriver; `None` (after saying why) when Chromium or chromedriver is
    /// missing and the tests are not required.
    pub async fn start() -> Option<Driver> {
        let (driver_ok, browser_ok) = (found("chromedriver"), found("chromium"));
        if !(driver_ok && browser_ok) {
            let why = format!(
                "the browser tests need Debian's chromium and chromium-driver (chromium found: {browser_ok}, chromedriver found: {driver_ok}); scripts/test installs them"
            );
            let required = std::env::var("GRANTRY_REQUIRE_BROWSER_TESTS").is_ok_and(|v| !v.is_empty() && v != "0");
            assert!(!required, "{why} (GRANTRY_REQUIRE_BROWSER_TESTS is set)");
            eprintln!("SKIPPED: {why}");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = std::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::builder().timeout(CALL_TIMEOUT).build().unwrap(),
            _profiles: tempfile::tempdir().unwrap(),
        };
        let started = Instant::now();
        loop {
            if let Ok(r) = driver.http.get(format!("{}/status", driver.url)).send().await
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == true
            {
                break;
            }
            assert!(started.elapsed() < DRIVER_START, "chromedriver did not answer within {DRIVER_START:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Some(driver)
    }

    /// A new browser with a fresh profile.
    pub async fn browser(&self) -> Browser {
        let profile = self._profiles.path().join(grantry_domain::ids::new_id());
        let args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1200,900".into(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": "/usr/bin/chromium", "args": args },
            "timeouts": { "pageLoad": 30000, "script": 10000, "implicit": 0 }
        } } });
        let answer = call(&self.http, reqwest::Method::POST, &format!("{}/session", self.url), Some(caps)).await;
        let id = answer["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {answer}")).to_string();
        Browser { http: self.http.clone(), session: format!("{}/session/{id}", self.url) }
    }
}

async fn call(http: &reqwest::Client, method: reqwest::Method, url: &str, body: Option<Value>) -> Value {
    let mut req = http.request(method.clone(), url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let response = req.send().await.unwrap_or_else(|e| panic!("WebDriver {method} {url}: {e}"));
    let status = response.status();
    let value: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "WebDriver {method} {url} answered {status}: {value}");
    value["value"].clone()
}

/// One browser window (a WebDriver session).
pub struct Browser {
    http: reqwest::Client,
    session: String,
}

impl Browser {
    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        call(&self.http, method, &format!("{}{path}", self.session), body).await
    }

    pub async fn open(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({ "url": url }))).await;
    }

    pub async fn url(&self) -> String {
        self.cmd(reqwest::Method::GET, "/url", None).await.as_str().unwrap().to_string()
    }

    async fn find(&self, css: &str) -> String {
        let v =
            self.cmd(reqwest::Method::POST, "/element", Some(json!({ "using": "css selector", "value": css }))).await;
        v[ELEMENT].as_str().unwrap_or_else(|| panic!("no element {css}: {v}")).to_string()
    }

    /// Clicks the element `css` selects.
    pub async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.cmd(reqwest::Method::POST, &format!("/element/{e}/click"), Some(json!({}))).await;
    }

    /// Clears the field `css` selects and types `text` into it.
    pub async fn fill(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.cmd(reqwest::Method::POST, &format!("/element/{e}/clear"), Some(json!({}))).await;
        self.cmd(reqwest::Method::POST, &format!("/element/{e}/value"), Some(json!({ "text": text }))).await;
    }

    /// Waits (bounded) until the address contains `part`: a click that submits a form may
    /// answer before the next page has loaded.
    pub async fn wait_url(&self, part: &str) -> String {
        let started = Instant::now();
        loop {
            let url = self.url().await;
            if url.contains(part) {
                return url;
            }
            assert!(
                started.elapsed() < CALL_TIMEOUT,
                "the browser did not reach {part}; it is at {url}: {}",
                self.text().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (bounded) until the page's text contains `part`; returns the text.
    pub async fn wait_text(&self, part: &str) -> String {
        let started = Instant::now();
        loop {
            let text = self.text().await;
            if text.contains(part) {
                return text;
            }
            assert!(started.elapsed() < CALL_TIMEOUT, "the page never showed {part:?}; it shows: {text}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (bounded) until `script` (a function body) returns true; `what` says what for.
    pub async fn wait_true(&self, script: &str, what: &str) {
        let started = Instant::now();
        loop {
            let body = json!({ "script": script, "args": [] });
            let done = match self.http.post(format!("{}/execute/sync", self.session)).json(&body).send().await {
                Ok(r) if r.status().is_success() => r.json::<Value>().await.ok().is_some_and(|v| v["value"] == true),
                _ => false,
            };
            if done {
                return;
            }
            assert!(started.elapsed() < CALL_TIMEOUT, "never true: {what}; the page shows: {}", self.text().await);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The visible text of the page, or `None` while a navigation makes it unreadable.
    async fn try_text(&self) -> Option<String> {
        let body = json!({ "script": "return document.body ? document.body.innerText : '';", "args": [] });
        let response = self.http.post(format!("{}/execute/sync", self.session)).json(&body).send().await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        let value: Value = response.json().await.ok()?;
        value["value"].as_str().map(str::to_string)
    }

    /// The visible text of the page.
    pub async fn text(&self) -> String {
        let started = Instant::now();
        loop {
            if let Some(text) = self.try_text().await {
                return text;
            }
            assert!(started.elapsed() < CALL_TIMEOUT, "the page's text could not be read");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs axe-core on the page and fails on any critical violation; `name` says which page.
    pub async fn check_accessibility(&self, name: &str) {
        let modules = std::env::var_os("GRANTRY_BROWSER_NODE_MODULES")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| home_cache().join("grantry-npm-browser").join("node_modules"));
        let Ok(axe) = std::fs::read_to_string(modules.join("axe-core").join("axe.min.js")) else {
            let required = std::env::var("GRANTRY_REQUIRE_BROWSER_TESTS").is_ok_and(|v| !v.is_empty() && v != "0");
            assert!(!required, "axe-core is not in {} (scripts/test installs it)", modules.display());
            eprintln!("SKIPPED: the accessibility check of {name} needs axe-core in {}", modules.display());
            return;
        };
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": format!("{axe}\nreturn true;"), "args": [] })),
        )
        .await;
        let found = self
            .cmd(
                reqwest::Method::POST,
                "/execute/async",
                Some(json!({ "script": "const done = arguments[arguments.length - 1];
                    axe.run(document, { resultTypes: ['violations'] })
                      .then(r => done(r.violations.filter(v => v.impact === 'critical')
                        .map(v => v.id + ': ' + v.help + ' at ' + v.nodes.map(n => n.target.join(' ')).join(', '))))
                      .catch(e => done(['axe-core failed: ' + e]));", "args": [] })),
            )
            .await;
        let critical: Vec<String> =
            found.as_array().unwrap_or(&Vec::new()).iter().filter_map(|v| v.as_str().map(str::to_string)).collect();
        assert!(critical.is_empty(), "critical accessibility violations on {name}: {critical:#?}");
    }

    /// Writes a PNG of the window to the screenshot directory as `name.png`.
    pub async fn screenshot(&self, name: &str) {
        use base64::Engine as _;
        let data = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD.decode(data.as_str().unwrap()).unwrap();
        let dir = std::env::var_os("GRANTRY_SCREENSHOT_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("grantry-screenshots"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Scrolls the element `css` selects into the middle of the window (for screenshots).
    pub async fn scroll_to(&self, css: &str) {
        let e = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": "arguments[0].scrollIntoView({ block: 'center' }); return true;", "args": [{ ELEMENT: e }] })),
        )
        .await;
    }

    pub async fn close(self) {
        let _ = self.http.delete(&self.session).send().await;
    }
}

fn home_cache() -> std::path::PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
}

/// Signs in with `--dev-login` as the user whose option text contains `who`.
async fn dev_sign_in(b: &Browser, base: &str, user_id: &str) {
    b.open(&format!("{base}/sign-in")).await;
    b.click(&format!("#user option[value='{user_id}']")).await;
    b.click("form[action='/sign-in/dev'] button[type=submit]").await;
    b.wait_text("Access packages you can request").await;
}

#[tokio::test]
async fn a_newcomer_requests_access_and_an_approver_grants_it_in_chromium() {
    let Some(driver) = Driver::start().await else { return };
    let app = TestApp::spawn_with(Options { dev_login: true, ..Default::default() }).await;
    let base = app.base.clone();
    let alex_browser = driver.browser().await;
    let b = &alex_browser;
    // The newcomer opens the printed address: the portal, with the demo on offer.
    b.open(&format!("{base}/")).await;
    b.wait_url("/sign-in").await;
    b.click("form[action='/sign-in/dev/demo'] button").await;
    let text = b.wait_text("The demo directory is ready").await;
    assert!(text.contains("Development server"), "{text}");
    b.screenshot("sign-in").await;
    b.check_accessibility("the sign-in page").await;
    let (_, users) = app.get(&app.admin, "/v1.0/users?$filter=userPrincipalName eq 'alex@contoso.com'").await;
    let alex = users["value"][0]["id"].as_str().unwrap().to_string();
    let (_, users) = app.get(&app.admin, "/v1.0/users?$filter=userPrincipalName eq 'megan@contoso.com'").await;
    let megan = users["value"][0]["id"].as_str().unwrap().to_string();
    dev_sign_in(b, &base, &alex).await;
    assert!(b.text().await.contains("Sales reports"));
    b.screenshot("my-access").await;
    b.check_accessibility("the packages one may request").await;
    b.click("a[aria-label='Request Sales reports']").await;
    b.wait_text("Which region do you work in?").await;
    // A wrong answer is refused by the API's validation, shown next to its field.
    b.click("input[type=radio][value=emea]").await;
    b.fill("input[type=text]", "12ab").await;
    b.fill("#justification", "Monthly sales review").await;
    b.click("form.stack button[type=submit]").await;
    b.wait_text("This answer must match the pattern [0-9]{4}.").await;
    b.screenshot("request-form-error").await;
    b.check_accessibility("the request form with an error").await;
    b.fill("input[type=text]", "1234").await;
    b.click("form.stack button[type=submit]").await;
    let text = b.wait_text("Your request was submitted").await;
    assert!(text.contains("Pending approval"), "{text}");
    b.screenshot("request").await;
    b.check_accessibility("a request").await;

    // Megan approves in a browser of her own.
    let megan_browser = driver.browser().await;
    let m = &megan_browser;
    dev_sign_in(m, &base, &megan).await;
    m.open(&format!("{base}/approvals")).await;
    assert!(m.text().await.contains("Alex Wilber"));
    m.screenshot("approvals").await;
    m.check_accessibility("the approvals inbox").await;
    m.click("table a").await;
    let text = m.wait_text("Your decision").await;
    assert!(text.contains("Monthly sales review") && text.contains("1234"), "{text}");
    m.click("#approve").await;
    m.fill("#justification", "Approved for the quarter").await;
    m.screenshot("approval").await;
    m.check_accessibility("an approval").await;
    m.click("form.stack button[type=submit]").await;
    m.wait_text("Your decision was recorded").await;
    app.drain().await;

    // The access arrives for Alex.
    b.open(&format!("{base}/access/assignments")).await;
    let text = b.text().await;
    assert!(text.contains("Sales reports") && text.contains("Delivered") && text.contains("in 30 days"), "{text}");
    b.screenshot("my-assignments").await;
    b.check_accessibility("one's access").await;
    // The policy lets Alex ask for more time.
    b.click("a[aria-label='Extend my access to Sales reports']").await;
    b.wait_text("Why do you need it longer?").await;
    b.screenshot("extend").await;
    b.check_accessibility("the extend form").await;
    b.open(&format!("{base}/access/requests")).await;
    b.screenshot("my-requests").await;
    b.check_accessibility("one's requests").await;
    megan_browser.close().await;
    alex_browser.close().await;
}

#[tokio::test]
async fn people_sign_in_through_the_openid_provider_in_chromium() {
    let Some(driver) = Driver::start().await else { return };
    let Some(mut provider) = crate::oidc::Provider::start("RS256").await else { return };
    let sign_in = grantry_api::portal::PortalSignIn {
        issuer: provider.issuer.clone(),
        client_id: "grantry-portal".into(),
        client_secret: Some("portal-secret".into()),
    };
    let app = TestApp::spawn_with(Options {
        dev_login: true,
        oidc: vec![provider.trusted(false)],
        portal_sign_in: Some(sign_in),
        ..Default::default()
    })
    .await;
    create_demo(&app).await;
    // The provider signs Alex in (it asks nothing and sends the browser straight back).
    provider
        .command(
            json!({ "cmd": "login", "claims": { "preferred_username": "alex@contoso.com", "name": "Alex Wilber" } }),
        )
        .await;
    let b = driver.browser().await;
    b.open(&format!("{}/access/requests", app.base)).await;
    assert!(b.url().await.contains("/sign-in?return="), "{}", b.url().await);
    b.click("#oidc-sign-in").await;
    let text = b.wait_text("My requests").await;
    assert!(b.url().await.ends_with("/access/requests"), "{}", b.url().await);
    assert!(text.contains("Alex Wilber") && text.contains("My requests"), "{text}");
    // An answer replayed from another browser (its state cookie missing) is refused.
    let other = driver.browser().await;
    other.open(&format!("{}/sign-in/callback?code=x&state=y", app.base)).await;
    other.wait_text("started in another browser").await;
    other.close().await;
    b.close().await;
}

#[tokio::test]
async fn an_administrator_builds_a_catalog_package_and_two_stage_policy_and_a_person_requests_it_in_chromium() {
    let Some(driver) = Driver::start().await else { return };
    let app = TestApp::spawn_with(Options { dev_login: true, ..Default::default() }).await;
    let base = app.base.clone();
    let people = create_demo(&app).await;
    let (irene, alex, megan) = (&people["irene"], &people["alex"], &people["megan"]);
    let (status, group) = app
        .post(
            &app.admin,
            "/v1.0/groups",
            json!({ "displayName": "Build servers", "mailNickname": "build-servers", "securityEnabled": true, "mailEnabled": false,
                    "owners@odata.bind": [format!("https://graph.microsoft.com/v1.0/users/{irene}")] }),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{group}");
    // Irene owns the group: adding a group to a catalog needs its ownership (or a directory role).
    let group = group["id"].as_str().unwrap().to_string();

    let admin_browser = driver.browser().await;
    let b = &admin_browser;
    dev_sign_in(b, &base, irene).await;
    // A catalog from scratch.
    b.open(&format!("{base}/admin")).await;
    b.fill("#displayName", "Engineering").await;
    b.fill("#description", "Build and release").await;
    b.click("form[action='/admin/catalogs'] button[type=submit]").await;
    b.wait_text("The catalog was created").await;
    // A group as its resource.
    b.click(&format!("#resource option[value='AadGroup:{group}']")).await;
    b.click("form[action$='/resources'] button[type=submit]").await;
    let text = b.wait_text("The resource was added").await;
    assert!(text.contains("Build servers"), "{text}");
    b.screenshot("admin-catalog").await;
    b.check_accessibility("a catalog in the administration").await;
    // An access package with the group's membership, incompatible with the demo's package.
    b.fill("#displayName", "Build access").await;
    b.click("form[action$='/packages'] button[type=submit]").await;
    b.wait_text("The access package was created").await;
    b.click("#role option:nth-child(2)").await;
    b.click("form[action$='/roles'] button[type=submit]").await;
    let text = b.wait_text("The access package was changed").await;
    assert!(text.contains("Build servers") && text.contains("Member"), "{text}");
    let sales = {
        let (_, packages) = app
            .get(
                &app.admin,
                "/v1.0/identityGovernance/entitlementManagement/accessPackages?$filter=displayName eq 'Sales reports'",
            )
            .await;
        packages["value"][0]["id"].as_str().unwrap().to_string()
    };
    b.click(&format!("#other option[value='{sales}']")).await;
    b.click("form[action$='/incompatible'] button[type=submit]").await;
    b.wait_url("#incompatible").await;
    let text = b.wait_text("Incompatible access packages").await;
    assert!(text.contains("Sales reports\nRemove"), "{text}");
    b.screenshot("admin-package").await;
    b.check_accessibility("an access package in the administration").await;
    // A two-stage policy; the API's validation is shown next to the field it is about.
    b.click("a[href$='/policies/new']").await;
    b.wait_text("Who can request").await;
    b.fill("#displayName", "Engineers ask, Megan then Irene approve").await;
    b.click(&format!("#stage1Approver option[value='user:{megan}']")).await;
    b.fill("#stage1Days", "2").await;
    b.click(&format!("#stage1Escalation option[value='user:{irene}']")).await;
    b.fill("#stage1EscalationDays", "1").await;
    b.click(&format!("#stage2Approver option[value='user:{irene}']")).await;
    b.fill("#stage2Days", "7").await;
    b.fill("#q1Text", "Which team are you in?").await;
    b.click("#q1Kind option[value='choice']").await;
    b.fill("#q1Choices", "Build\nRelease").await;
    b.click("#q1Required").await;
    b.click("form.stack button[type=submit]").await;
    let text = b.wait_text("at least 4 days").await;
    assert!(text.contains("Some fields need attention"), "{text}");
    b.scroll_to("#stage1Days_error").await;
    b.screenshot("admin-policy-error").await;
    b.check_accessibility("the policy form with an error").await;
    b.click("#stage1Escalation option[value='']").await;
    b.fill("#stage1Days", "7").await;
    b.click("form.stack button[type=submit]").await;
    let text = b.wait_text("The policy was created").await;
    assert!(text.contains("Engineers ask, Megan then Irene approve") && text.contains("2 approval stages"), "{text}");
    b.screenshot("admin-policy").await;
    // Irene edits it in the same form, filled with the policy; the approvers' picker searches
    // the directory as she types.
    let (_, found) = app
        .get(
            &app.admin,
            "/v1.0/identityGovernance/entitlementManagement/assignmentPolicies?$filter=displayName eq 'Engineers ask, Megan then Irene approve'",
        )
        .await;
    let policy = found["value"][0]["id"].as_str().unwrap().to_string();
    b.click(&format!("a[href$='/policies/{policy}']")).await;
    b.wait_text("Save policy").await;
    b.fill("#find", "alex").await;
    b.wait_true(
        &format!(
            "return !document.querySelector(\"#stage2Approver option[value='user:{megan}']\") \
             && !!document.querySelector(\"#stage2Approver option[value='user:{alex}']\") \
             && document.querySelector('#stage2Approver').value === 'user:{irene}';"
        ),
        "the approvers' picker lists Alex, keeps Irene chosen, and no longer lists Megan",
    )
    .await;
    b.check_accessibility("the policy form editing a policy").await;
    b.fill("#displayName", "Engineers ask, Megan then Irene approve within 5 days").await;
    b.fill("#stage2Days", "5").await;
    b.click("form.stack button[type=submit]").await;
    let text = b.wait_text("The policy was saved").await;
    assert!(text.contains("Engineers ask, Megan then Irene approve within 5 days"), "{text}");
    let (_, saved) = app
        .get(&app.admin, &format!("/v1.0/identityGovernance/entitlementManagement/assignmentPolicies/{policy}"))
        .await;
    let stages = &saved["requestApprovalSettings"]["stages"];
    assert_eq!(stages[1]["durationBeforeAutomaticDenial"], "P5D", "{saved}");
    assert_eq!(stages[0]["primaryApprovers"][0]["userId"], megan.as_str(), "{saved}");
    assert_eq!(saved["questions"][0]["choices"].as_array().map(Vec::len), Some(2), "the question is kept: {saved}");

    // Alex finds the new package and requests it; Megan is asked first.
    let alex_browser = driver.browser().await;
    let a = &alex_browser;
    dev_sign_in(a, &base, alex).await;
    assert!(a.text().await.contains("Build access"));
    a.click("a[aria-label='Request Build access']").await;
    a.wait_text("Which team are you in?").await;
    a.click("input[type=radio][value=Release]").await;
    a.fill("#justification", "I ship the releases").await;
    a.click("form.stack button[type=submit]").await;
    let text = a.wait_text("Your request was submitted").await;
    assert!(text.contains("Pending approval") && text.contains("Release"), "{text}");
    let (_, approvals) = app
        .get(
            &app.admin,
            "/v1.0/identityGovernance/entitlementManagement/assignmentRequests?$filter=state eq 'pendingApproval'",
        )
        .await;
    assert_eq!(approvals["value"].as_array().unwrap().len(), 1, "{approvals}");
    // Irene sees the request among all requests, and the audit log of what she built.
    b.open(&format!("{base}/admin/requests")).await;
    let text = b.wait_text("Build access").await;
    assert!(text.contains("Alex Wilber") && text.contains("Pending approval"), "{text}");
    b.screenshot("admin-requests").await;
    b.check_accessibility("all requests").await;
    b.open(&format!("{base}/admin/audit")).await;
    let text = b.wait_text("Audit log").await;
    assert!(text.contains("Irene Admin"), "{text}");
    b.screenshot("admin-audit").await;
    b.check_accessibility("the audit log").await;
    // Deleting a policy that someone holds access through is refused with the API's message.
    let (_, found) = app
        .get(
            &app.admin,
            "/v1.0/identityGovernance/entitlementManagement/assignmentPolicies?$filter=displayName eq 'Members ask, Megan approves, 30 days'",
        )
        .await;
    let demo_policy = found["value"][0]["id"].as_str().unwrap().to_string();
    let (status, body) = app
        .post(
            &app.admin,
            "/v1.0/identityGovernance/entitlementManagement/assignmentRequests",
            json!({ "requestType": "adminAdd", "assignment": { "targetId": megan, "assignmentPolicyId": demo_policy, "accessPackageId": sales } }),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
    app.drain().await;
    b.open(&format!("{base}/admin/packages/{sales}")).await;
    b.click(&format!("form[action$='/policies/{demo_policy}/delete'] button[type=submit]")).await;
    let text = b.wait_text("active assignment(s)").await;
    assert!(text.contains("Members ask, Megan approves, 30 days"), "{text}");
    alex_browser.close().await;
    admin_browser.close().await;
}
