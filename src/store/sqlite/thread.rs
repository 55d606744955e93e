//! The writer connection, owned by one thread.
//!
//! Every write (a batch of events, a queue claim or finish) is a closure sent
//! to this thread, which runs it in one transaction on its own connection
//! and sends the result back. Owning the connection on a plain thread makes
//! each statement a direct call into SQLite with a cached prepared statement,
//! instead of a hop to a driver's worker thread per statement: the statements
//! of a 256-event batch then cost what SQLite costs, not what hops cost.

use std::{
    collections::VecDeque,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc, Arc, Mutex,
    },
    time::{Duration, Instant},
};

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use tokio::sync::oneshot;

use super::DatabaseFile;
use crate::store::{Result, StoreError};

/// Prepared statements kept per connection: every fixed statement of the
/// write path and the queue, plus one per product aspect.
const STATEMENT_CACHE: usize = 64;

/// Most writes one transaction takes from the thread's queue.
const ROUND: usize = 64;
/// While intake waits, background writes get one round in this long.
const BACKGROUND_GAP: Duration = Duration::from_millis(10);
/// How often the writer checkpoints the WAL's tail itself, between rounds.
///
/// The checkpointer thread (`checkpoint.rs`) copies the bulk of the WAL
/// back into the database off the write path, but under steady load it never
/// catches up to the last frame: the writer has always appended more by the
/// time it is done. SQLite starts the WAL over from its beginning only at a
/// write that finds it fully copied, so without this the WAL grew for as
/// long as the load lasted (1.1 GB for 60,000 events), and every frame was
/// appended to a growing file, which the kernel zeroes and allocates block by
/// block. Copying the few frames the checkpointer has not reached yet, on
/// this thread between two rounds, lets the next round start the WAL over.
const TAIL_CHECKPOINT: Duration = Duration::from_millis(500);

enum Job {
    /// Work that shares the next transaction with whatever else is waiting.
    Write(Box<dyn Write>, Priority),
    /// Anything else on the connection, on its own (closing it; tests'
    /// PRAGMAs).
    Session(Box<dyn FnOnce(&mut Session) + Send>),
}

/// Whether a write holds someone up. Intake is answered after its commit,
/// with TikTok's 3-second limit running; the processing queue's claims and
/// attempts are bookkeeping nobody waits on. While intake is waiting, a round
/// takes one background write at most every [`BACKGROUND_GAP`], so during a
/// burst the queue slows down but never stops; between bursts it catches up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Priority {
    Now,
    Background,
}

/// One write waiting for a transaction: it runs in the round's transaction
/// and is answered after the commit. It may run twice (see
/// [`Session::round`]), so it does nothing but its statements: the work is
/// `Fn`, and what it returned the second time is its answer.
trait Write: Send {
    fn run(&mut self, tx: &Transaction<'_>) -> Ran;
    /// `committed` is the round's outcome: a write is stored only if it ran
    /// and the round committed.
    fn answer(self: Box<Self>, committed: &Result<()>);
}

enum Ran {
    Done,
    /// Refused by the database (or unreadable data): it is rolled back
    /// alone and the rest of the round goes on.
    Refused,
    /// The database failed under it: the whole round is rolled back.
    Failed,
}

struct Pending<T, F> {
    work: F,
    value: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> Write for Pending<T, F>
where
    T: Send,
    F: Fn(&Transaction<'_>) -> Result<T> + Send,
{
    fn run(&mut self, tx: &Transaction<'_>) -> Ran {
        let value = (self.work)(tx);
        let ran = match &value {
            Ok(_) => Ran::Done,
            Err(e) if e.is_unavailable() => Ran::Failed,
            Err(_) => Ran::Refused,
        };
        self.value = Some(value);
        ran
    }

    fn answer(self: Box<Self>, committed: &Result<()>) {
        let answer = match (committed, self.value) {
            (Ok(()), Some(value)) => value,
            // Its own error says more than the round's.
            (Err(_), Some(Err(own))) => Err(own),
            (Err(round), _) => Err(round.shared()),
            (Ok(()), None) => Err(StoreError::Unavailable("the write did not run".into())),
        };
        let _ = self.reply.send(answer);
    }
}

/// The handle the store sends work through; cheap to share.
#[derive(Debug)]
pub(super) struct WriterThread {
    jobs: Mutex<mpsc::Sender<Job>>,
    /// Set when the last round failed, cleared by the next that commits:
    /// health reports what intake would meet.
    failing: Arc<AtomicBool>,
    open: Arc<AtomicBool>,
}

/// What the thread owns: the connection (opened on first use, and again
/// after a failure) and what it needs to open one.
pub(super) struct Session {
    path: PathBuf,
    file: Arc<DatabaseFile>,
    connection: Option<Connection>,
    open: Arc<AtomicBool>,
    failing: Arc<AtomicBool>,
    last_checkpoint: Instant,
}

impl WriterThread {
    /// Starts the thread with its first connection (from [`open`]).
    pub fn start(
        path: &Path,
        file: Arc<DatabaseFile>,
        connection: Connection,
    ) -> Result<WriterThread> {
        let open = Arc::new(AtomicBool::new(true));
        let failing = Arc::new(AtomicBool::new(false));
        let mut session = Session {
            path: path.to_path_buf(),
            file,
            connection: Some(connection),
            open: open.clone(),
            failing: failing.clone(),
            last_checkpoint: Instant::now(),
        };
        let (jobs, receiver) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || session.serve(&receiver))
            .map_err(|e| StoreError::Unavailable(e.into()))?;
        Ok(WriterThread {
            jobs: Mutex::new(jobs),
            failing,
            open,
        })
    }

    /// Runs `work` in a transaction on the writer connection and returns
    /// once that transaction committed (or failed, in which case nothing of
    /// `work` is stored). Writes that wait at the same time share one
    /// transaction, and so one disk sync: intake batches, queue claims and
    /// attempts alike.
    pub async fn write<T, F>(&self, priority: Priority, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(&Transaction<'_>) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            work,
            value: None,
            reply,
        };
        self.send(Job::Write(Box::new(pending), priority))?;
        answer.await.map_err(|_| gone())?
    }

    /// Runs `work` on the writer connection outside any transaction (tests
    /// set a PRAGMA on it this way).
    #[cfg(test)]
    pub async fn with_connection<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Session(Box::new(move |session: &mut Session| {
            let result = session.connection().and_then(|c| work(c));
            let _ = reply.send(result);
        })))?;
        answer.await.map_err(|_| gone())?
    }

    /// Closes the connection (it reopens should another write come).
    pub async fn close(&self) {
        let (reply, answer) = oneshot::channel();
        let job = Job::Session(Box::new(move |session: &mut Session| {
            session.close();
            let _ = reply.send(());
        }));
        if self.send(job).is_ok() {
            let _ = answer.await;
        }
    }

    pub fn is_failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Relaxed)
    }

    fn send(&self, job: Job) -> Result<()> {
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.send(job).map_err(|_| gone())
    }
}

/// Runs the writes one after the other until one is not done.
fn run_all(tx: &Transaction<'_>, writes: &mut [Box<dyn Write>]) -> Ran {
    for write in writes.iter_mut() {
        match write.run(tx) {
            Ran::Done => {}
            other => return other,
        }
    }
    Ran::Done
}

fn rolled_back() -> StoreError {
    StoreError::Unavailable("a write failed; its transaction was rolled back".into())
}

fn gone() -> StoreError {
    StoreError::Unavailable("the SQLite writer thread has stopped".into())
}

impl Session {
    /// The thread's loop: takes whatever writes are waiting into one
    /// transaction (see [`Priority`] for which). Ends when every sender is
    /// gone and nothing is left, closing the connection (the last one to
    /// close checkpoints the WAL).
    fn serve(&mut self, receiver: &mpsc::Receiver<Job>) {
        let mut now: Vec<Box<dyn Write>> = Vec::with_capacity(ROUND);
        let mut background: VecDeque<Box<dyn Write>> = VecDeque::new();
        let mut round: Vec<Box<dyn Write>> = Vec::with_capacity(ROUND + 1);
        let mut last_background = Instant::now();
        loop {
            let mut next = if background.is_empty() {
                match receiver.recv() {
                    Ok(job) => Some(job),
                    Err(_) => break,
                }
            } else {
                receiver.try_recv().ok()
            };
            while let Some(job) = next.take() {
                match job {
                    Job::Write(write, Priority::Now) => now.push(write),
                    Job::Write(write, Priority::Background) => background.push_back(write),
                    Job::Session(work) => {
                        round.extend(now.drain(..).chain(background.drain(..)));
                        self.round(&mut round);
                        work(self);
                    }
                }
                if now.len() < ROUND {
                    next = receiver.try_recv().ok();
                }
            }
            let share = if now.is_empty() {
                ROUND
            } else if last_background.elapsed() >= BACKGROUND_GAP {
                1
            } else {
                0
            };
            let share = share.min(background.len());
            if share > 0 {
                last_background = Instant::now();
            }
            round.append(&mut now);
            round.extend(background.drain(..share));
            self.round(&mut round);
        }
        self.close();
    }

    /// Runs the writes in one transaction; a write the database refuses is
    /// rolled back alone (the round runs again with each write in a
    /// savepoint, see below). Should the database fail
    /// (a full disk, an I/O error), the round is rolled back whole and its
    /// connection closed rather than kept: SQLite can leave a transaction
    /// open behind a failed COMMIT, and a connection in that state would
    /// quietly take the next round into a transaction that never commits.
    fn round(&mut self, writes: &mut Vec<Box<dyn Write>>) {
        if writes.is_empty() {
            return;
        }
        let committed = self.file.check().and_then(|()| {
            let connection = self.connection()?;
            // IMMEDIATE takes the write lock at BEGIN: a busy database is
            // met before any work, not at the first write halfway through.
            let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // Every write straight into the transaction first: a savepoint
            // per write, so that a refused one can be taken back alone,
            // copies every page each write touches into its statement
            // journal (a tenth of the writer's time at full load), and
            // refusals are rare.
            let refused = match run_all(&tx, writes) {
                Ran::Done => return Ok(tx.commit()?),
                // An error that ended the transaction by itself is handled
                // as a failure (the connection is reopened).
                Ran::Refused if tx.is_autocommit() => return Err(rolled_back()),
                Ran::Refused => tx.rollback(),
                Ran::Failed => return Err(rolled_back()),
            };
            refused?;
            if writes.len() == 1 {
                // Alone in its round, the refused write took back only
                // itself; its answer is its own error.
                return Ok(());
            }
            // One write was refused and the whole round rolled back with it:
            // the round again, each write in a savepoint, so that the
            // refused one is rolled back alone.
            let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for write in writes.iter_mut() {
                tx.execute_batch("SAVEPOINT write")?;
                match write.run(&tx) {
                    Ran::Done => tx.execute_batch("RELEASE write")?,
                    // Some errors end the whole transaction in SQLite; the
                    // savepoint is then gone with it.
                    Ran::Refused if !tx.is_autocommit() => {
                        tx.execute_batch("ROLLBACK TO write; RELEASE write")?
                    }
                    Ran::Refused | Ran::Failed => return Err(rolled_back()),
                }
            }
            tx.commit()?;
            Ok(())
        });
        if committed.is_err() {
            self.close();
        }
        self.failing.store(committed.is_err(), Ordering::Relaxed);
        for write in writes.drain(..) {
            write.answer(&committed);
        }
        if committed.is_ok() && self.last_checkpoint.elapsed() >= TAIL_CHECKPOINT {
            self.checkpoint_tail();
        }
    }

    /// See [`TAIL_CHECKPOINT`]. After the round's answers, so no request
    /// waits for it; PASSIVE, so it never waits for a reader, and a
    /// checkpoint the checkpointer thread is running makes it return at once.
    fn checkpoint_tail(&mut self) {
        self.last_checkpoint = Instant::now();
        let Some(connection) = &self.connection else {
            return;
        };
        let result = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
        });
        match result {
            Ok((frames, copied)) => tracing::trace!(
                frames,
                copied,
                took_ms = self.last_checkpoint.elapsed().as_secs_f64() * 1000.0,
                "WAL tail checkpoint"
            ),
            Err(error) => tracing::debug!(%error, "WAL tail checkpoint did not run"),
        }
    }

    fn connection(&mut self) -> Result<&mut Connection> {
        if self.connection.is_none() {
            self.connection = Some(open(&self.path)?);
            self.open.store(true, Ordering::Relaxed);
        }
        Ok(self.connection.as_mut().expect("opened above"))
    }

    fn close(&mut self) {
        if let Some(connection) = self.connection.take() {
            // A connection that cannot close cleanly is dropped all the same.
            let _ = connection.close();
        }
        self.open.store(false, Ordering::Relaxed);
    }
}

/// Opens a writer connection, creating the database file if needed: WAL with `synchronous=FULL`, so a commit is
/// on disk when it returns. Checkpoints are left to the checkpointer
/// (`checkpoint.rs`), so that no commit waits for one.
pub(super) fn open(path: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags)?;
    connection.busy_timeout(Duration::from_secs(5))?;
    let mode: String =
        connection.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unavailable(
            format!("{} cannot use WAL (journal mode {mode})", path.display()).into(),
        ));
    }
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    connection.pragma_update(None, "wal_autocheckpoint", 0)?;
    // A round run again after a refusal runs each write in a savepoint (see
    // `Session::round`), and SQLite keeps each savepoint's page copies in a
    // statement journal: a temporary file unless temporary storage is in
    // memory. In a file, that journal was a sixth of the writer's time when
    // every write had a savepoint (appends the kernel zeroes first).
    connection.pragma_update(None, "temp_store", "MEMORY")?;
    // After a checkpoint has caught up, the WAL file is cut back to this.
    connection.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(connection)
}
