//! The HTML report renders in headless Chromium (Debian's `chromium`, which
//! scripts/test installs): the DOM Chromium builds holds the timeline and the
//! charts, and a screenshot is taken and is not blank. Fails loudly when
//! Chromium is missing.

use std::path::PathBuf;
use std::process::Command;

fn chromium() -> PathBuf {
    for c in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if std::path::Path::new(c).exists() {
            return PathBuf::from(c);
        }
    }
    panic!("chromium is not installed: run the tests through scripts/test, which installs it");
}

fn base_args(profile: &std::path::Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect()
}

#[test]
fn the_html_report_renders_with_its_charts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let html = dir.path().join("report.html");
    let journal =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/journals/resumed.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args([
            "report",
            &journal.display().to_string(),
            "--format",
            "html",
            "-o",
            &html.display().to_string(),
        ])
        .output()
        .expect("ferry report");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let profile = dir.path().join("profile");
    let url = format!("file://{}", html.display());
    let dom = Command::new(chromium())
        .args(base_args(&profile))
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .expect("run chromium --dump-dom");
    let dom_text = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom_text.contains("Cutover report: Legacy → prod cutover"),
        "chromium did not render the page:\n{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    assert!(
        dom_text.matches("<svg").count() >= 2,
        "the timeline and the lag chart are in the rendered DOM"
    );
    assert!(dom_text.contains("<polyline"), "the lag series is drawn");

    let png = dir.path().join("shot.png");
    let shot = Command::new(chromium())
        .args(base_args(&dir.path().join("profile2")))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1100,1800")
        .arg(&url)
        .output()
        .expect("run chromium --screenshot");
    let bytes = std::fs::read(&png).unwrap_or_else(|e| {
        panic!(
            "no screenshot ({e}): {}",
            String::from_utf8_lossy(&shot.stderr)
        )
    });
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "a PNG file");
    // a blank 1100x1800 page compresses to a few KB; text, tables and charts do not
    assert!(
        bytes.len() > 40_000,
        "the screenshot looks blank ({} bytes)",
        bytes.len()
    );
    if let Ok(dirname) = std::env::var("FERRY_REPORT_SCREENSHOT") {
        let _ = std::fs::copy(&png, dirname);
    }
}
