//! [`GroupCommit`]: one writer thread commits for everyone, so that many
//! concurrent committers share each transaction and its fsync.
//!
//! # The writer
//!
//! A dedicated OS thread (`troupe-store`; an fsync must never block a tokio
//! worker) waits for a batch, then takes whatever else is queued, up to
//! [`GroupCommitConfig::max_batches`]; with a non-zero
//! [`GroupCommitConfig::max_delay`] it waits at most that long for more.
//! It commits the batches it took in one transaction ([`Store::commit`]),
//! then completes each caller with the outcome. Under load, batches queue
//! while a commit is in flight, so the next commit takes many at once: the
//! number of fsyncs grows with the disk's speed, not with the callers'.
//!
//! # Failures
//!
//! A failed commit fails every batch in it, each caller getting the same
//! [`StoreError`], and the writer goes on: the next commit may succeed (a
//! full disk may have room again). Batches in a failed commit may or may
//! not be durable (see the durability contract in [`super`]), so a caller
//! must not report them as done.
//!
//! # Shutdown
//!
//! When every `GroupCommit` handle is dropped, the writer commits what is
//! still queued and exits. A caller that drops its `commit` future does not
//! withdraw its batch: once queued, it is committed.

use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::{Batch, Store, StoreError};
use crate::histogram::{Histogram, HistogramSnapshot};
use crate::sync::Mutex;

/// How the writer groups batches into commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupCommitConfig {
    /// The most batches in one commit. By default 64. Zero counts as one.
    pub max_batches: usize,
    /// How long the writer waits for more batches once it has one, when
    /// fewer than `max_batches` are queued. By default zero: it commits
    /// what is queued at once, which batches well under load (batches queue
    /// during each fsync) and adds no latency when idle.
    pub max_delay: Duration,
}

/// The default most batches in one commit.
pub const DEFAULT_MAX_BATCHES: usize = 64;

impl Default for GroupCommitConfig {
    fn default() -> Self {
        Self { max_batches: DEFAULT_MAX_BATCHES, max_delay: Duration::ZERO }
    }
}

/// What the writer has done so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupCommitStats {
    /// Transactions committed (each made durable).
    pub commits: u64,
    /// Batches made durable, over all commits.
    pub batches: u64,
    /// Transactions that failed.
    pub failed_commits: u64,
    /// The error of the latest failed commit, if any.
    pub last_error: Option<String>,
}

/// A batch waiting for the writer, and where its outcome goes.
struct Request {
    batch: Batch,
    done: Sender,
}

/// A handle to the writer thread. Clones share it; the writer exits once
/// the last clone is dropped and the queue is drained.
#[derive(Clone)]
pub struct GroupCommit {
    shared: Arc<Shared>,
}

struct Shared {
    /// `None` only while dropping.
    queue: Option<mpsc::Sender<Request>>,
    store: Arc<dyn Store>,
    stats: Arc<Mutex<GroupCommitStats>>,
    /// How long each commit took, successful or not.
    times: Arc<Histogram>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Shared {
    /// The last handle gone: the writer drains the queue and stops, and
    /// the store is released (closed) before this returns, so that it can
    /// be opened again at once.
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl GroupCommit {
    /// Starts the writer thread over `store`.
    ///
    /// If the OS refuses a new thread, the failure is logged and every
    /// commit fails with [`StoreError::Closed`].
    pub fn start(store: Arc<dyn Store>, config: GroupCommitConfig) -> Self {
        let (queue, requests) = mpsc::channel();
        let stats = Arc::new(Mutex::new(GroupCommitStats::default()));
        let times = Arc::new(Histogram::default());
        let writer = Writer { store: store.clone(), stats: stats.clone(), times: times.clone(), config, requests };
        let writer = match std::thread::Builder::new().name("troupe-store".into()).spawn(move || writer.run()) {
            Ok(writer) => Some(writer),
            Err(error) => {
                // The writer (and its receiver) is gone, so each send fails.
                tracing::error!(%error, "cannot start the store's writer thread; durable commits will fail");
                None
            }
        };
        Self { shared: Arc::new(Shared { queue: Some(queue), store, stats, times, writer }) }
    }

    /// Queues `batch` for the next commit and resolves once it is durable,
    /// or with the error that kept it from being so.
    ///
    /// # Errors
    ///
    /// The [`Store::commit`] error of the transaction the batch was in, or
    /// [`StoreError::Closed`] if the writer has stopped.
    pub async fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        self.submit(batch).await
    }

    /// Queues `batch` now, and returns what resolves once it is durable:
    /// batches commit in the order they were submitted, whenever their
    /// futures are first polled.
    ///
    /// # Errors
    ///
    /// As [`GroupCommit::commit`].
    pub fn submit(&self, batch: Batch) -> impl Future<Output = Result<(), StoreError>> + Send + 'static {
        let (done, outcome) = oneshot::channel();
        let queued = match &self.shared.queue {
            Some(queue) => queue.send(Request { batch, done }).map_err(|_| StoreError::Closed),
            None => Err(StoreError::Closed),
        };
        async move {
            queued?;
            outcome.await.map_err(|_| StoreError::Closed)?
        }
    }

    /// The store, for reads (which need no writer).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    /// What the writer has done so far.
    pub fn stats(&self) -> GroupCommitStats {
        self.shared.stats.lock().clone()
    }

    /// How long its commits took so far.
    pub fn commit_times(&self) -> HistogramSnapshot {
        let mut snapshot = HistogramSnapshot::default();
        snapshot.add(&self.shared.times);
        snapshot
    }
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").field("stats", &self.stats()).finish_non_exhaustive()
    }
}

/// The writer thread's state.
struct Writer {
    store: Arc<dyn Store>,
    stats: Arc<Mutex<GroupCommitStats>>,
    times: Arc<Histogram>,
    config: GroupCommitConfig,
    requests: mpsc::Receiver<Request>,
}

impl Writer {
    /// Commits group after group until every handle is gone and the queue
    /// is empty.
    fn run(self) {
        let max_batches = self.config.max_batches.max(1);
        let mut batches = Vec::with_capacity(max_batches);
        let mut waiting = Vec::with_capacity(max_batches);
        // `recv` fails only once every sender is dropped *and* the queue
        // is empty, so queued batches are drained before the thread exits.
        while let Ok(first) = self.requests.recv() {
            self.gather(first, max_batches, &mut batches, &mut waiting);
            let started = Instant::now();
            let outcome = self.store.commit(&batches);
            self.times.observe(started.elapsed());
            self.record(&outcome, batches.len());
            for done in waiting.drain(..) {
                // A caller that stopped waiting has nobody to tell.
                let _ = done.send(outcome.clone());
            }
            batches.clear();
        }
    }

    /// Fills `batches` (and `waiting`, their callers) with `first` and what
    /// else is queued, waiting up to `max_delay` for more.
    fn gather(&self, first: Request, max_batches: usize, batches: &mut Vec<Batch>, waiting: &mut Vec<Sender>) {
        let mut take = |request: Request| {
            batches.push(request.batch);
            waiting.push(request.done);
        };
        take(first);
        let mut taken = 1;
        while taken < max_batches {
            match self.requests.try_recv() {
                Ok(request) => take(request),
                Err(_) => break,
            }
            taken += 1;
        }
        if self.config.max_delay.is_zero() {
            return;
        }
        let deadline = Instant::now() + self.config.max_delay;
        while taken < max_batches {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.requests.recv_timeout(left) {
                Ok(request) => take(request),
                Err(_) => break,
            }
            taken += 1;
        }
    }

    fn record(&self, outcome: &Result<(), StoreError>, batches: usize) {
        let mut stats = self.stats.lock();
        match outcome {
            Ok(()) => {
                stats.commits += 1;
                stats.batches += batches as u64;
            }
            Err(error) => {
                stats.failed_commits += 1;
                stats.last_error = Some(error.to_string());
                tracing::warn!(%error, batches, "a store commit failed; its callers get the error");
            }
        }
    }
}

/// Where a batch's outcome goes.
type Sender = oneshot::Sender<Result<(), StoreError>>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::faulty::FaultyDisk;
    use crate::store::{KeyValues, RedbStore, Table};

    /// A store that records the size of each commit and takes at least
    /// `delay` over it, as an fsync does.
    struct Recording {
        inner: RedbStore,
        delay: Duration,
        commits: Mutex<Vec<usize>>,
    }

    impl Recording {
        fn new(inner: RedbStore, delay: Duration) -> Arc<Self> {
            Arc::new(Self { inner, delay, commits: Mutex::new(Vec::new()) })
        }
    }

    impl Store for Recording {
        fn commit(&self, batches: &[Batch]) -> Result<(), StoreError> {
            std::thread::sleep(self.delay);
            self.commits.lock().push(batches.len());
            self.inner.commit(batches)
        }

        fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
            self.inner.get(table, key)
        }

        fn range(&self, table: Table, start: &[u8], end: &[u8]) -> Result<KeyValues, StoreError> {
            self.inner.range(table, start, end)
        }
    }

    fn put(key: u32) -> Batch {
        let mut batch = Batch::new();
        batch.put(Table::Inbox, key.to_be_bytes(), key.to_le_bytes());
        batch
    }

    /// Waits (a bounded while) for the writer to exit, which drops its
    /// reference to the store.
    async fn writer_exits(store: &Arc<Recording>) {
        for _ in 0..500 {
            if Arc::strong_count(store) == 1 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the writer still holds the store");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_concurrent_committers_all_resolve_ok_in_fewer_commits_than_batches() {
        const COMMITTERS: u32 = 256;
        let store = Recording::new(RedbStore::open_on(FaultyDisk::new()).unwrap(), Duration::from_millis(5));
        let group = GroupCommit::start(store.clone(), GroupCommitConfig::default());
        let tasks: Vec<_> = (0..COMMITTERS)
            .map(|key| {
                let group = group.clone();
                tokio::spawn(async move { group.commit(put(key)).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().expect("every commit is made durable");
        }
        for key in 0..COMMITTERS {
            assert_eq!(group.store().get(Table::Inbox, &key.to_be_bytes()).unwrap(), Some(key.to_le_bytes().to_vec()));
        }
        let stats = group.stats();
        assert_eq!(stats.batches, u64::from(COMMITTERS));
        assert_eq!(stats.failed_commits, 0);
        assert!(stats.commits < stats.batches / 4, "batches are grouped: {stats:?}");
        let sizes = store.commits.lock().clone();
        assert_eq!(sizes.len() as u64, stats.commits);
        assert!(sizes.iter().all(|&size| (1..=DEFAULT_MAX_BATCHES).contains(&size)), "{sizes:?}");
    }

    #[tokio::test]
    async fn a_failed_commit_fails_each_of_its_callers_with_its_error_and_the_next_commit_succeeds() {
        let disk = FaultyDisk::new();
        let store = Recording::new(RedbStore::open_on(disk.clone()).unwrap(), Duration::ZERO);
        // A long linger puts both callers into one commit.
        let config = GroupCommitConfig { max_batches: 2, max_delay: Duration::from_secs(10) };
        let group = GroupCommit::start(store.clone(), config);

        disk.fail_after(Some(0));
        let (first, second) = tokio::join!(group.commit(put(1)), group.commit(put(2)));
        assert_eq!(*store.commits.lock(), [2], "one commit for both");
        let (first, second) = (first.unwrap_err(), second.unwrap_err());
        assert!(matches!(first, StoreError::Io { .. }), "{first:?}");
        assert_eq!(first.to_string(), second.to_string());
        let stats = group.stats();
        assert_eq!((stats.commits, stats.batches, stats.failed_commits), (0, 0, 1));
        assert_eq!(stats.last_error, Some(first.to_string()));

        disk.fail_after(None);
        let (third, fourth) = tokio::join!(group.commit(put(3)), group.commit(put(4)));
        third.expect("the writer goes on after a failure");
        fourth.unwrap();
        let stats = group.stats();
        assert_eq!((stats.commits, stats.batches, stats.failed_commits), (1, 2, 1));
        assert_eq!(group.store().get(Table::Inbox, &1u32.to_be_bytes()).unwrap(), None);
        assert!(group.store().get(Table::Inbox, &3u32.to_be_bytes()).unwrap().is_some());
    }

    #[tokio::test]
    async fn dropping_every_handle_drains_the_queue_even_for_callers_that_stopped_waiting() {
        use futures_util::FutureExt;

        let store = Recording::new(RedbStore::open_on(FaultyDisk::new()).unwrap(), Duration::from_millis(20));
        let group = GroupCommit::start(store.clone(), GroupCommitConfig::default());
        for key in 0..10 {
            // Polled once, the batch is queued; the future is then dropped.
            assert!(group.commit(put(key)).now_or_never().is_none());
        }
        drop(group);
        writer_exits(&store).await;
        for key in 0..10u32 {
            assert!(store.get(Table::Inbox, &key.to_be_bytes()).unwrap().is_some(), "batch {key} was committed");
        }
    }

    #[test]
    fn a_commit_can_be_awaited_from_any_task() {
        fn is_send<T: Send>(_: &T) {}
        fn is_shareable<T: Send + Sync + 'static>() {}
        is_shareable::<GroupCommit>();
        let group = GroupCommit::start(Arc::new(RedbStore::open_on(FaultyDisk::new()).unwrap()), Default::default());
        let commit = group.commit(Batch::new());
        is_send(&commit);
    }

    #[test]
    fn a_zero_max_batches_commits_one_batch_at_a_time() {
        let store = Recording::new(RedbStore::open_on(FaultyDisk::new()).unwrap(), Duration::ZERO);
        let group = GroupCommit::start(store.clone(), GroupCommitConfig { max_batches: 0, max_delay: Duration::ZERO });
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let (a, b) = tokio::join!(group.commit(put(1)), group.commit(put(2)));
            a.unwrap();
            b.unwrap();
        });
        assert_eq!(*store.commits.lock(), [1, 1]);
    }
}
