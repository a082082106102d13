//! Standard output, the one way command results leave the process, and
//! what a closed pipe means.
//!
//! Every result line goes through [`print_line`] (or the [`say!`] macro),
//! never `println!`, which panics when the reader has gone away (`troupe
//! --json ps | head -c 100`). A write that finds the pipe closed becomes
//! [`StdoutClosed`], which travels up like any error; `main` then ends the
//! process with [`end_by_sigpipe`]: killed by `SIGPIPE`, silently, which a
//! shell reports as status 141. That is what `ls`, `cat` or `yes` do when
//! their reader goes away: they keep `SIGPIPE`'s default action. Rust
//! programs start with the signal ignored, so that a write fails instead,
//! and `troupe run` needs that for its control connections: a client that
//! hangs up must not kill the host.
//!
//! A command that streams ([`troupe events`](super::remote)) may wait a
//! long time between lines, and must not outlive its reader meanwhile:
//! [`reader_gone`] notices the reader leaving without writing anything.

use std::fmt::Display;
use std::io::{ErrorKind, Write as _};

/// Stdout's reader has gone away (a pipe closed at its read end): the
/// command ends quietly, as coreutils tools do (see the module docs).
#[derive(Debug, thiserror::Error)]
#[error("standard output is closed")]
pub struct StdoutClosed;

/// Writes `text` and a newline to stdout.
///
/// # Errors
///
/// [`StdoutClosed`] if the reader has gone away; any other write error
/// (a full disk) as it is.
pub fn print_line(text: impl Display) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{text}") {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        Err(e) => Err(anyhow::Error::new(e).context("cannot write to standard output")),
    }
}

/// `say!("{x} ...")?` writes one formatted line of a command's result to
/// stdout through [`print_line`]: this crate's `println!`.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::cli::stdout::print_line(format_args!($($arg)*))
    };
}
pub(crate) use say;

/// Resolves when stdout's reader has gone away, without writing anything;
/// never, if stdout cannot tell (a file, `/dev/null`, a terminal that
/// stays open).
///
/// A thread blocks in `poll(2)` on stdout asking for no event at all:
/// `poll` reports `POLLERR` (a pipe whose read end closed) and `POLLHUP`
/// (a socket or terminal hung up) whatever was asked, and nothing else,
/// so the thread wakes once, when the reader leaves, and costs nothing
/// until then. A probe write would put bytes in the output, and tokio's
/// reactor refuses files and reports readiness by edges; a parked thread
/// is the simple, level-triggered way.
pub async fn reader_gone() {
    use rustix::event::{PollFd, PollFlags, poll};
    let (gone, wait) = tokio::sync::oneshot::channel();
    let watcher = std::thread::Builder::new().name("stdout-watch".into()).spawn(move || {
        let stdout = std::io::stdout();
        let mut fds = [PollFd::new(&stdout, PollFlags::empty())];
        loop {
            match poll(&mut fds, None) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                // Cannot watch: the reader is then noticed at the next write.
                Err(_) => return,
            }
            let revents = fds[0].revents();
            if revents.intersects(PollFlags::ERR | PollFlags::HUP) {
                let _ = gone.send(());
                return;
            }
            if !revents.is_empty() {
                // `POLLNVAL`: there is no stdout to watch.
                return;
            }
        }
    });
    // Detached: the process ends without waiting for the thread.
    drop(watcher);
    if wait.await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Ends the process as coreutils tools end when their reader has gone
/// away: killed by `SIGPIPE` (status 141 in a shell), printing nothing.
pub fn end_by_sigpipe() -> ! {
    // SAFETY: `signal` and `raise` take plain integers and touch no memory
    // of ours; restoring the default action is what lets `SIGPIPE` end the
    // process, which is the point. No handler of ours is involved.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
    }
    // Not reached unless the signal is blocked on this thread.
    std::process::exit(128 + libc::SIGPIPE)
}
