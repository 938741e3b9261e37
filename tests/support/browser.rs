//! A real browser for tests: Debian's `chromium`, headless, driven over WebDriver (`chromedriver`, one per test
//! on a free port; a session per person in the test) with `fantoccini`; and a site's page embedding the widget,
//! served by the test itself on its own origin, as a customer's shop would serve it.
//!
//! Every wait polls the page until a condition holds, bounded by [`WAIT`]; a wait that runs out saves a
//! screenshot and fails with what the page showed. Chromium missing is a failure, never a skip: CI installs it
//! (`.ci/run`).

#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

/// How long any one thing may take to appear on the page.
pub const WAIT: Duration = Duration::from_secs(15);
/// How often a wait looks at the page again.
const POLL: Duration = Duration::from_millis(50);
/// How long chromedriver may take to answer its status endpoint.
const DRIVER_START: Duration = Duration::from_secs(20);
/// The widget's `data-site`.
pub const SITE: &str = "shop";

/// One browser at a time: on two cores, two Chromiums beside the rest of the suite make every wait slower.
static BROWSERS: Semaphore = Semaphore::const_new(1);

const INSTALL_HINT: &str = "the browser tests need Debian's chromium and chromium-driver: \
                            `apt-get install -y chromium chromium-driver` (.ci/run installs them)";

/// A headless Chromium under its own chromedriver, killed (the whole process group) when dropped.
pub struct Browser {
    pub client: Client,
    /// The chromedriver this session runs under; `None` for [`Browser::another`]'s sessions, which borrow it.
    driver: Option<Child>,
    /// chromedriver's URL, for further sessions.
    driver_url: String,
    name: String,
    _turn: Option<SemaphorePermit<'static>>,
}

fn program(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("`{name}` not found on PATH: {INSTALL_HINT}"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// A new WebDriver session, so a new headless Chromium with a fresh profile, under the chromedriver at `url`.
async fn session(url: &str) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("browserName".to_owned(), json!("chrome"));
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": program("chromium"),
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-dev-shm-usage", "--window-size=1024,768", "--lang=en-US"],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("chromedriver could not start chromium: {e}; {INSTALL_HINT}"))
}

impl Browser {
    /// Starts chromedriver and a headless Chromium; `name` names the screenshots this test saves.
    pub async fn start(name: &str) -> Self {
        let turn = BROWSERS.acquire().await.unwrap();
        let port = free_port();
        let driver = Command::new(program("chromedriver"))
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own group, so dropping it also kills the browser processes it started.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run chromedriver: {e}; {INSTALL_HINT}"));
        let url = format!("http://127.0.0.1:{port}");
        wait_for_driver(&url).await;
        Self {
            client: session(&url).await,
            driver: Some(driver),
            driver_url: url,
            name: name.to_owned(),
            _turn: Some(turn),
        }
    }

    /// A second browser under the same chromedriver: its own Chromium with its own profile (storage,
    /// cookies), as a second person at another computer; `name` names its screenshots. It ends with `self`,
    /// whose drop stops the chromedriver both run under.
    pub async fn another(&self, name: &str) -> Self {
        Self {
            client: session(&self.driver_url).await,
            driver: None,
            driver_url: self.driver_url.clone(),
            name: name.to_owned(),
            _turn: None,
        }
    }

    /// Ends the WebDriver session (the browser quits) and then chromedriver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }

    /// Saves a screenshot as `target/screenshots/<test>-<what>.png` and returns its path.
    pub async fn screenshot(&self, what: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("a screenshot");
        let dir = screenshots_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{}-{what}.png", self.name));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Runs `script` in the page and returns its value.
    pub async fn eval(&self, script: &str) -> Value {
        self.client.execute(script, Vec::new()).await.expect("the script runs")
    }

    /// Polls `script` (a JavaScript function body returning a value) until `done` holds for its value, and
    /// returns that value; after [`WAIT`], saves a screenshot and fails naming `what`.
    pub async fn wait_for(&self, what: &str, script: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            // A page being (re)loaded has no document to run in yet: look again.
            let value = self.client.execute(script, Vec::new()).await.unwrap_or(Value::Null);
            if done(&value) {
                return value;
            }
            if Instant::now() >= deadline {
                let shot = self.screenshot("timeout").await;
                panic!(
                    "timed out waiting for {what}; the page showed {value} (screenshot {})",
                    shot.display()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits for `css` to match a displayed element, and returns it.
    pub async fn displayed(&self, css: &str) -> fantoccini::elements::Element {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(element) = self.client.find(Locator::Css(css)).await
                && element.is_displayed().await.unwrap_or(false)
            {
                return element;
            }
            if Instant::now() >= deadline {
                let shot = self.screenshot("timeout").await;
                panic!("`{css}` was not displayed in time (screenshot {})", shot.display());
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let Some(driver) = &mut self.driver else {
            return;
        };
        // The group: chromedriver and any browser it left (after a failed test, it is still running).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", driver.id())])
            .stderr(Stdio::null())
            .status();
        let _ = driver.wait();
    }
}

async fn wait_for_driver(url: &str) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + DRIVER_START;
    loop {
        let status = client.get(format!("{url}/status")).send().await;
        if let Ok(response) = status
            && let Ok(body) = response.json::<Value>().await
            && body["value"]["ready"] == true
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver did not start in time; {INSTALL_HINT}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// `target/screenshots`, beside the binary under test (`target/debug/protofuse`), wherever the target dir is.
fn screenshots_dir() -> PathBuf {
    let exe = Path::new(env!("CARGO_BIN_EXE_protofuse"));
    exe.ancestors()
        .nth(2)
        .unwrap_or(Path::new("target"))
        .join("screenshots")
}

/// A site's page with the widget on it, served from its own origin (not protofuse's), like a customer's shop.
pub struct Page {
    /// `http://127.0.0.1:<port>`: the origin the site's config must allow.
    pub origin: String,
    listener: Option<TcpListener>,
}

impl Page {
    /// Binds the page's port, so its origin is known before the server's configuration is written.
    pub async fn bind() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        Self {
            origin,
            listener: Some(listener),
        }
    }

    /// Serves the page: the widget's tag pointing at protofuse on `server_base`, with `attributes` (e.g.
    /// `data-lang="zh"`) added to it.
    pub fn serve(&mut self, server_base: &str, attributes: &str) {
        let html = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Example shop</title></head>\
             <body><h1>Example shop</h1><p>Things for sale.</p>\
             <script src=\"{server_base}/web/widget.js\" data-site=\"{SITE}\" {attributes} async></script>\
             </body></html>"
        );
        let app = axum::Router::new().route(
            "/",
            axum::routing::get(move || async move { axum::response::Html(html) }),
        );
        let listener = self.listener.take().expect("served once");
        tokio::spawn(async move { axum::serve(listener, app).await });
    }

    /// The page's URL.
    pub fn url(&self) -> String {
        format!("{}/", self.origin)
    }
}
