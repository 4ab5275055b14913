//! The example binary starts, renders its page from the typed handles and serves what the page
//! links. (kiln's own tests/axum_example.rs checks the serving rules and the browser in depth.)

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn the_page_links_assets_the_binary_serves() {
    let port = {
        let l = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln-example-axum"))
        .args(["--port", &port.to_string()])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the example never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    let get = |path: &str| {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut r = agent
            .get(&format!("http://127.0.0.1:{port}{path}"))
            .call()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.body_mut().read_to_string().unwrap_or_default())
    };
    let (status, page) = get("/");
    let css = page
        .split("rel=\"stylesheet\" href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .map(get);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200);
    assert!(page.contains("integrity=\"sha384-"), "{page}");
    let (css_status, css) = css.expect("a stylesheet link");
    assert_eq!(css_status, 200);
    assert!(css.contains("@font-face"), "{css}");
}
