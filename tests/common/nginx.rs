//! nginx from Debian (`scripts/test` installs it), started in the foreground on a loopback port
//! with a configuration the test writes, and stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running nginx.
pub struct Nginx {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its prefix folder (configuration, logs, temporary files).
    pub prefix: PathBuf,
    child: Child,
}

/// nginx's binary, or None (with a message) when it is not installed.
pub fn binary() -> Option<PathBuf> {
    super::tool(PathBuf::from("/usr/sbin/nginx"), "nginx")
}

impl Nginx {
    /// Starts `nginx` under `prefix` with `server` as the body of its one `server {}` block
    /// (`listen` is added), and waits until it listens.
    pub fn start(nginx: &Path, prefix: &Path, server: &str) -> Nginx {
        let port = super::edge::free_port();
        std::fs::create_dir_all(prefix.join("logs")).unwrap();
        let conf = format!(
            r#"daemon off;
master_process off;
pid {p}/nginx.pid;
error_log {p}/logs/error.log;
events {{}}
http {{
    access_log {p}/logs/access.log;
    client_body_temp_path {p}/body; proxy_temp_path {p}/proxy; fastcgi_temp_path {p}/fastcgi;
    uwsgi_temp_path {p}/uwsgi; scgi_temp_path {p}/scgi;
    types {{ text/css css; text/javascript js; image/svg+xml svg; font/woff2 woff2; }}
    server {{
        listen 127.0.0.1:{port};
{server}
    }}
}}
"#,
            p = prefix.display(),
        );
        std::fs::write(prefix.join("nginx.conf"), conf).unwrap();
        let child = Command::new(nginx)
            .arg("-p")
            .arg(prefix)
            .arg("-c")
            .arg(prefix.join("nginx.conf"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut server = Nginx {
            port,
            prefix: prefix.to_owned(),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                let log =
                    std::fs::read_to_string(prefix.join("logs/error.log")).unwrap_or_default();
                panic!("nginx exited with {status} before listening on {port}: {log}");
            }
            assert!(Instant::now() < deadline, "nginx never listened on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
