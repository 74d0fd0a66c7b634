//! The shutdown signal every long-running `docket` command stops on: Ctrl-C or SIGTERM.

use tokio::sync::watch;

/// A watch that turns true on Ctrl-C or SIGTERM (what systemd sends on `systemctl stop`).
pub(crate) fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(term) => term,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot listen for SIGTERM");
                        let _ = ctrl_c.await;
                        let _ = tx.send(true);
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        eprintln!("docket: shutting down (finishing work in flight)");
        let _ = tx.send(true);
    });
    rx
}

/// A token cancelled on Ctrl-C or SIGTERM.
pub(crate) fn shutdown_token() -> tokio_util::sync::CancellationToken {
    let token = tokio_util::sync::CancellationToken::new();
    let mut signal = shutdown_signal();
    let cancel = token.clone();
    tokio::spawn(async move {
        let _ = signal.wait_for(|s| *s).await;
        cancel.cancel();
    });
    token
}
