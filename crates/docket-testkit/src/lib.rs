//! Real `nats-server` processes for tests: started on free ports with their own JetStream
//! directories, killed and restarted on demand, stopped on drop; and [`http`], the one small
//! HTTP client the tests use to read the services' endpoints.
//!
//! Tests never talk to a server that happens to be running on the machine: every server gets a
//! unique `server_name`, and readiness is only declared once the process we spawned answers on
//! its port with that name. The binary is `nats-server` from `PATH` (or the path in
//! `DOCKET_NATS_SERVER`); it must be 2.10 or newer, for `sync_interval`.
//!
//! The servers' API is synchronous and panics with a clear message on failure, as test helpers do. Call
//! it from `tokio::task::spawn_blocking` when other tasks must keep running meanwhile.

mod cluster;
pub mod http;
mod node;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use cluster::NatsCluster;
use node::{free_port, Node};

/// How long a single server may take to accept clients with JetStream ready.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// One single-node nats-server with JetStream, in its own temporary directory.
#[derive(Debug)]
pub struct NatsServer {
    node: Node,
    // Dropped after `node`, so the process is dead before its directory is removed.
    dir: tempfile::TempDir,
}

impl NatsServer {
    /// Starts a server on a free port of 127.0.0.1 and waits until JetStream is ready.
    ///
    /// Panics, with the server's log, if `nats-server` is missing or does not become ready
    /// within 10 s.
    pub fn start() -> NatsServer {
        Self::start_with_config("")
    }

    /// Starts a server like [`NatsServer::start`], with `extra` appended to its configuration:
    /// e.g. the `accounts` block of a deployment's configuration file. The server's name, its
    /// ports, its pid file and its `jetstream` block (its own store directory, `sync_interval:
    /// always`) are the test kit's, so `extra` must not set them. With users in `extra`, the
    /// readiness check still works: it needs no client login.
    pub fn start_with_config(extra: &str) -> NatsServer {
        node::check_binary();
        let dir = match tempfile::Builder::new().prefix("docket-nats-").tempdir() {
            Ok(dir) => dir,
            Err(err) => panic!("cannot create a temporary directory for nats-server: {err}"),
        };
        // A port found free can be taken before the server binds it; try a few fresh ones.
        let mut last_failure = String::new();
        for _ in 0..3 {
            let mut node = Node::new(dir.path(), "docket-test", free_port(), free_port());
            let config = format!(
                "{}\njetstream {{\n  store_dir: {}\n  sync_interval: always\n}}\n{extra}\n",
                node.base_config(),
                quote(&dir.path().join("jetstream")),
            );
            node.write_config(&config);
            node.spawn();
            match node.wait_ready(READY_TIMEOUT) {
                Ok(()) => return NatsServer { node, dir },
                Err(failure) => {
                    node.kill();
                    last_failure = failure;
                }
            }
        }
        panic!("nats-server did not start: {last_failure}")
    }

    /// The URL clients connect to, `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.node.url()
    }

    /// Same as [`NatsServer::url`] (the name nats.rs's test crate uses).
    pub fn client_url(&self) -> String {
        self.url()
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.node.port
    }

    /// The HTTP monitoring endpoint, `http://127.0.0.1:<port>`.
    pub fn monitor_url(&self) -> String {
        self.node.monitor_url()
    }

    /// The JetStream store directory (kept across [`NatsServer::restart`]).
    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("jetstream")
    }

    /// The file the server's stdout and stderr go to, across restarts.
    pub fn log_path(&self) -> &Path {
        &self.node.log
    }

    /// The last lines of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        self.node.log_tail()
    }

    /// True while the server process is running.
    pub fn is_running(&mut self) -> bool {
        self.node.is_running()
    }

    /// Kills the server with SIGKILL (no clean shutdown) and waits until it is gone.
    pub fn kill(&mut self) {
        self.node.kill();
    }

    /// Starts the server again on the same port and store directory, killing it first if it is
    /// still running, and waits until JetStream is ready.
    pub fn restart(&mut self) {
        self.node.kill();
        self.node.spawn();
        if let Err(failure) = self.node.wait_ready(READY_TIMEOUT) {
            self.node.kill();
            panic!("nats-server did not restart: {failure}");
        }
    }
}

/// A path as a quoted config-file string.
fn quote(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}
