//! The real binary as a child process: started with only the variables a
//! test gives it, killed when the test is done with it (or panics).

use std::{
    net::TcpListener,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub const BIN: &str = env!("CARGO_BIN_EXE_tiktok-webhook");

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `tiktok-webhook serve` on its own port.
pub struct Server {
    pub child: Child,
    pub port: u16,
}

impl Server {
    /// Starts `serve` in `dir` with only the given variables (and `PATH`)
    /// set, on a free port. Its output is discarded.
    pub fn start(dir: &Path, vars: &[(&str, &str)]) -> Server {
        Self::start_with(dir, vars, Stdio::null())
    }

    /// As [`Server::start`], with stdout piped for the test to read. Read
    /// it: a full pipe blocks the server's logging, and with it the server.
    pub fn start_piped(dir: &Path, vars: &[(&str, &str)]) -> Server {
        Self::start_with(dir, vars, Stdio::piped())
    }

    fn start_with(dir: &Path, vars: &[(&str, &str)], stdout: Stdio) -> Server {
        let port = free_port();
        let mut command = Command::new(BIN);
        command
            .arg("serve")
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::null());
        for (k, v) in vars {
            command.env(k, v);
        }
        let child = command.spawn().expect("the binary starts");
        Server { child, port }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub async fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(r) = reqwest::get(self.url("/health")).await {
                if r.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the server did not become healthy within 30 s");
    }

    /// SIGKILL: no graceful stop, nothing flushed on the way out.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
