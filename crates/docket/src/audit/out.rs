//! Output of `docket audit …`: standard output whose reader went away (`docket audit verify … |
//! head`) ends the output quietly, where `println!` would panic with a backtrace; the command
//! still finishes and exits with its verdict. Progress on standard error never fails a command.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};

/// Set once standard output's reader has gone: nothing more is written to it.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `text` to standard output; a closed pipe is not an error (the rest is dropped).
pub(crate) fn print(text: &str) -> Result<()> {
    if CLOSED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => Err(e).context("writing to standard output"),
    }
}

/// Writes `text` and a newline to standard output, as [`print`].
pub(crate) fn line(text: impl std::fmt::Display) -> Result<()> {
    print(&format!("{text}\n"))
}

/// Writes `value` as pretty JSON and a newline to standard output, as [`print`].
pub(crate) fn json<T: serde::Serialize + ?Sized>(value: &T) -> Result<()> {
    line(serde_json::to_string_pretty(value)?)
}

/// Writes progress to standard error, ignoring a closed standard error.
pub(crate) fn progress(text: impl std::fmt::Display) {
    let _ = write!(std::io::stderr().lock(), "{text}");
}
