//! [`NatsCluster`]: several nats-server nodes joined by routes, with clustered JetStream.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::node::{self, free_port, Node};

/// How long a cluster may take to elect a JetStream meta leader and report healthy.
const CLUSTER_READY_TIMEOUT: Duration = Duration::from_secs(30);

static NEXT_CLUSTER: AtomicU64 = AtomicU64::new(0);

/// A JetStream cluster of real nats-server processes on 127.0.0.1, each node with its own store
/// directory, all in one temporary directory.
#[derive(Debug)]
pub struct NatsCluster {
    nodes: Vec<Node>,
    // Dropped after `nodes`, so the processes are dead before the directory is removed.
    dir: tempfile::TempDir,
}

impl NatsCluster {
    /// Starts `size` nodes (3 for replicated streams) and waits until every node reports healthy.
    ///
    /// Panics, with the nodes' logs, if that takes more than 30 s.
    pub fn start(size: usize) -> NatsCluster {
        assert!(size >= 1, "a cluster needs at least one node");
        node::check_binary();
        let dir = match tempfile::Builder::new()
            .prefix("docket-nats-cluster-")
            .tempdir()
        {
            Ok(dir) => dir,
            Err(err) => panic!("cannot create a temporary directory for nats-server: {err}"),
        };
        let cluster_name = format!(
            "docket-test-{}-{}",
            std::process::id(),
            NEXT_CLUSTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut last_failure = String::new();
        // A port found free can be taken before a server binds it; try a few fresh sets.
        for _ in 0..3 {
            let route_ports: Vec<u16> = (0..size).map(|_| free_port()).collect();
            let routes = route_ports
                .iter()
                .map(|p| format!("nats-route://127.0.0.1:{p}"))
                .collect::<Vec<_>>()
                .join(", ");
            let mut nodes = Vec::with_capacity(size);
            for (i, route_port) in route_ports.iter().enumerate() {
                let node_dir = dir.path().join(format!("n{i}"));
                if let Err(err) = std::fs::create_dir_all(&node_dir) {
                    panic!("cannot create {}: {err}", node_dir.display());
                }
                let node = Node::new(&node_dir, &format!("n{i}"), free_port(), free_port());
                let config = format!(
                    "{base}\njetstream {{\n  store_dir: {store}\n  sync_interval: always\n}}\n\
                     cluster {{\n  name: {cluster_name}\n  listen: 127.0.0.1:{route_port}\n  \
                     routes: [{routes}]\n}}\n",
                    base = node.base_config(),
                    store = crate::quote(&node_dir.join("jetstream")),
                );
                node.write_config(&config);
                nodes.push(node);
            }
            for node in &mut nodes {
                node.spawn();
            }
            let failure = nodes
                .iter_mut()
                .find_map(|n| n.wait_ready(CLUSTER_READY_TIMEOUT).err());
            match failure {
                None => return NatsCluster { nodes, dir },
                Some(failure) => last_failure = failure,
            }
        }
        panic!("nats-server cluster did not start: {last_failure}")
    }

    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Always false: a cluster has at least one node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The client URL of node `i`.
    pub fn node(&self, i: usize) -> String {
        self.nodes[i].url()
    }

    /// The `server_name` of node `i` (what stream info reports as leader or replica).
    pub fn server_name(&self, i: usize) -> &str {
        &self.nodes[i].name
    }

    /// The index of the node named `name`, if it is one of this cluster's.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// The client URLs of every node, for a client that fails over between them.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(Node::url).collect()
    }

    /// The client URLs of every node joined by commas.
    pub fn url(&self) -> String {
        self.urls().join(",")
    }

    /// The JetStream store directory of node `i`.
    pub fn store_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("n{i}")).join("jetstream")
    }

    /// The last lines of node `i`'s log.
    pub fn log_tail(&self, i: usize) -> String {
        self.nodes[i].log_tail()
    }

    /// Kills node `i` with SIGKILL and waits until it is gone.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].kill();
    }

    /// Starts node `i` again on the same ports and store directory (killing it first if it is
    /// running) and waits until it reports healthy, that is, caught up with the cluster.
    pub fn restart(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        node.kill();
        node.spawn();
        if let Err(failure) = node.wait_ready(CLUSTER_READY_TIMEOUT) {
            node.kill();
            panic!("nats-server node {i} did not restart: {failure}");
        }
    }
}
