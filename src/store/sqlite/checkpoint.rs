//! WAL checkpoints off the write path.
//!
//! SQLite's automatic checkpoint runs inside the COMMIT that crosses its
//! threshold, so every few thousand pages one batch of requests would wait
//! for pages to be copied back and the database file synced. The writer
//! turns that off (`thread.rs`); this thread runs a PASSIVE checkpoint on
//! its own connection every [`INTERVAL`] instead, which copies what no
//! reader still needs and never blocks the writer.

use std::{
    path::{Path, PathBuf},
    sync::{mpsc, Mutex},
    thread::JoinHandle,
    time::Duration,
};

use rusqlite::{Connection, OpenFlags};

const INTERVAL: Duration = Duration::from_millis(250);

#[derive(Debug)]
pub(super) struct Checkpointer {
    stop: Mutex<Option<(mpsc::Sender<()>, JoinHandle<()>)>>,
}

impl Checkpointer {
    pub fn start(path: &Path) -> std::io::Result<Checkpointer> {
        let path = path.to_path_buf();
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(&path, &stopped))?;
        Ok(Checkpointer {
            stop: Mutex::new(Some((stop, thread))),
        })
    }

    /// Stops the thread and waits for it (at most one checkpoint's time).
    pub fn stop(&self) {
        let taken = self.stop.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some((stop, thread)) = taken {
            drop(stop);
            let _ = thread.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(path: &PathBuf, stopped: &mpsc::Receiver<()>) {
    let mut connection: Option<Connection> = None;
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
        if connection.is_none() {
            connection = open(path).ok();
        }
        let Some(conn) = &connection else { continue };
        // (busy, WAL frames, frames copied): a busy checkpoint just waits
        // for the next round.
        let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
        });
        match result {
            Ok((frames, copied)) => {
                tracing::trace!(frames, copied, "WAL checkpoint");
            }
            Err(error) => {
                tracing::debug!(%error, "WAL checkpoint failed; reopening");
                connection = None;
            }
        }
    }
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags)?;
    connection.busy_timeout(Duration::from_millis(100))?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.pragma_update(None, "wal_autocheckpoint", 0)?;
    Ok(connection)
}
