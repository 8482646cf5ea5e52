//! Concurrent access to the store: parallel readers and one writer with group commit.
//!
//! SQLite in WAL mode lets readers run beside one writer, so reads (node records, baselines,
//! history, audit queries) each take a connection of their own and never wait for a verdict
//! being recorded. Writes go through one connection. A caller queues its write and then
//! waits for the writer; whoever holds the writer runs every write queued at that moment in
//! one transaction (each in its own savepoint, so one failing write leaves the others) and
//! commits them with one fsync. A write is answered only after that commit returned, so
//! nothing is acknowledged before it is durable, and under load one fsync carries many
//! verdicts instead of one each.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::attest::VerifierError;
use crate::store::{Store, StoreError};
use crate::store_api::StoreOps;

/// Most writes committed together; the rest wait for the next commit.
pub const MAX_BATCH: usize = 512;

/// Idle read connections kept open; more are opened under load and closed afterwards.
const MAX_IDLE_READERS: usize = 16;

/// What a job leaves to do once its batch's commit succeeded (`Ok`) or failed (`Err`).
pub type Finish = Box<dyn FnOnce(Result<(), String>) + Send>;

/// A queued write. Given the writer's store (inside the batch transaction) it does its work;
/// given `None` (the batch transaction could not begin) it does nothing.
pub type Job = Box<dyn FnOnce(Option<&mut dyn StoreOps>) -> JobOutcome + Send>;

/// The result of a job's work, kept until the commit decides whether it stands.
pub struct JobOutcome {
    pub failed: bool,
    pub finish: Finish,
}

/// A store that can run a batch of jobs in one transaction, each in a savepoint of its own
/// (a failing job undoes only itself), and commit them at once.
pub trait BatchWriter: Send {
    /// Runs `batch`; the jobs' finishers and the commit's outcome.
    fn run_batch(&mut self, batch: Vec<Job>) -> (Vec<Finish>, Result<(), String>);
}

/// Where a waiting caller finds its answer.
type Slot<T> = Arc<Mutex<Option<Result<T, VerifierError>>>>;

/// One writer and a queue: whoever holds the writer commits everything queued at that moment.
pub struct GroupCommit<W: BatchWriter> {
    writer: Mutex<W>,
    queue: Mutex<Vec<Job>>,
    commits: AtomicU64,
    writes: AtomicU64,
}

/// How many commits carried how many writes (for metrics and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitCounts {
    pub commits: u64,
    pub writes: u64,
}

impl<W: BatchWriter> GroupCommit<W> {
    pub fn new(writer: W) -> Self {
        GroupCommit {
            writer: Mutex::new(writer),
            queue: Mutex::new(Vec::new()),
            commits: AtomicU64::new(0),
            writes: AtomicU64::new(0),
        }
    }

    pub fn commit_counts(&self) -> CommitCounts {
        CommitCounts {
            commits: self.commits.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
        }
    }

    /// Runs `f` as one write, committed (durably) with whatever other writes are queued, and
    /// returns its result only after the commit. An `Err` from `f` undoes `f`'s changes alone.
    pub fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn StoreOps) -> Result<T, VerifierError> + Send + 'static,
    ) -> Result<T, VerifierError> {
        let slot: Slot<T> = Arc::new(Mutex::new(None));
        let answer = Arc::clone(&slot);
        let job: Job = Box::new(move |store: Option<&mut dyn StoreOps>| {
            let result = store.map(f);
            JobOutcome {
                failed: !matches!(result, Some(Ok(_))),
                finish: Box::new(move |commit: Result<(), String>| {
                    let result = match (result, commit) {
                        (Some(Ok(value)), Ok(())) => Ok(value),
                        (Some(Err(error)), _) => Err(error),
                        (_, Err(reason)) => {
                            Err(VerifierError::Store(StoreError::Commit { reason }))
                        }
                        (None, Ok(())) => Err(VerifierError::Store(StoreError::Commit {
                            reason: "the write did not run".into(),
                        })),
                    };
                    if let Ok(mut slot) = answer.lock() {
                        *slot = Some(result);
                    }
                }),
            }
        });
        self.queue
            .lock()
            .map_err(|_| VerifierError::Poisoned)?
            .push(job);
        loop {
            let mut writer = self.writer.lock().map_err(|_| VerifierError::Poisoned)?;
            if let Some(result) = take(&slot)? {
                return result;
            }
            let batch = {
                let mut queue = self.queue.lock().map_err(|_| VerifierError::Poisoned)?;
                // Oldest first: the queue is in arrival order.
                let taken = queue.len().min(MAX_BATCH);
                let rest = queue.split_off(taken);
                std::mem::replace(&mut *queue, rest)
            };
            if !batch.is_empty() {
                let count = batch.len() as u64;
                let (finishers, committed) = writer.run_batch(batch);
                self.commits.fetch_add(1, Ordering::Relaxed);
                self.writes.fetch_add(count, Ordering::Relaxed);
                for finish in finishers {
                    finish(committed.clone());
                }
            }
            drop(writer);
            if let Some(result) = take(&slot)? {
                return result;
            }
        }
    }

    /// Jobs queued now (tests use it to line up a batch).
    pub fn queued(&self) -> usize {
        self.queue.lock().map(|q| q.len()).unwrap_or(0)
    }

    /// Holds the writer, so writes queue up (tests of group commit).
    pub fn hold_writer(&self) -> Result<std::sync::MutexGuard<'_, W>, VerifierError> {
        self.writer.lock().map_err(|_| VerifierError::Poisoned)
    }
}

impl BatchWriter for Store {
    /// One `BEGIN IMMEDIATE` for the whole batch, a savepoint per job, one `COMMIT`.
    fn run_batch(&mut self, batch: Vec<Job>) -> (Vec<Finish>, Result<(), String>) {
        let begun = self
            .connection
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| format!("begin: {e}"));
        let mut finishers = Vec::with_capacity(batch.len());
        for job in batch {
            if begun.is_err() {
                finishers.push(job(None).finish);
                continue;
            }
            let savepoint = self.connection.execute_batch("SAVEPOINT vigil_write");
            if savepoint.is_err() {
                finishers.push(job(None).finish);
                continue;
            }
            let outcome = job(Some(&mut *self));
            let end = if outcome.failed {
                "ROLLBACK TO vigil_write; RELEASE vigil_write"
            } else {
                "RELEASE vigil_write"
            };
            // A failure here surfaces at COMMIT, which then fails the whole batch.
            let _ = self.connection.execute_batch(end);
            finishers.push(outcome.finish);
        }
        let committed = match begun {
            Ok(()) => self.connection.execute_batch("COMMIT").map_err(|e| {
                let _ = self.connection.execute_batch("ROLLBACK");
                format!("commit: {e}")
            }),
            Err(reason) => Err(reason),
        };
        (finishers, committed)
    }
}

/// The embedded engine: parallel read connections and one group-committing writer.
pub struct StorePool {
    writes: GroupCommit<Store>,
    readers: Mutex<Vec<Store>>,
    /// The database file; `None` for an in-memory store, whose reads use the writer.
    path: Option<PathBuf>,
    /// Handed to read connections (they publish its public half), without asking the writer.
    audit_key: Arc<vigil_audit::AuditSigningKey>,
}

impl StorePool {
    pub fn new(store: Store) -> Self {
        let path = store.path().map(Path::to_path_buf);
        let audit_key = store.shared_audit_key();
        StorePool {
            audit_key,
            writes: GroupCommit::new(store),
            readers: Mutex::new(Vec::new()),
            path,
        }
    }

    pub fn commit_counts(&self) -> CommitCounts {
        self.writes.commit_counts()
    }

    /// Runs `f` on a read connection of its own; it sees every write acknowledged so far.
    pub fn read<T>(&self, f: impl FnOnce(&Store) -> T) -> Result<T, VerifierError> {
        self.read_mut(|store| f(store))
    }

    /// [`StorePool::read`] with the connection lent mutably (the engine-neutral interface
    /// takes `&mut`; a read connection is `query_only` all the same).
    pub fn read_mut<T>(&self, f: impl FnOnce(&mut Store) -> T) -> Result<T, VerifierError> {
        let Some(path) = &self.path else {
            let mut store = self.writes.hold_writer()?;
            return Ok(f(&mut store));
        };
        let idle = self
            .readers
            .lock()
            .map_err(|_| VerifierError::Poisoned)?
            .pop();
        let mut reader = match idle {
            Some(reader) => reader,
            None => Store::open_reader(path, Arc::clone(&self.audit_key))?,
        };
        let value = f(&mut reader);
        if let Ok(mut readers) = self.readers.lock()
            && readers.len() < MAX_IDLE_READERS
        {
            readers.push(reader);
        }
        Ok(value)
    }

    /// Runs `f` as one write, committed (durably) with whatever other writes are queued, and
    /// returns its result only after the commit. An `Err` from `f` undoes `f`'s changes alone.
    pub fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn StoreOps) -> Result<T, VerifierError> + Send + 'static,
    ) -> Result<T, VerifierError> {
        self.writes.write(f)
    }

    /// Jobs queued now (tests use it to line up a batch).
    pub fn queued(&self) -> usize {
        self.writes.queued()
    }

    /// Holds the writer, so writes queue up (tests of group commit).
    pub fn hold_writer(&self) -> Result<std::sync::MutexGuard<'_, Store>, VerifierError> {
        self.writes.hold_writer()
    }
}

fn take<T>(slot: &Slot<T>) -> Result<Option<Result<T, VerifierError>>, VerifierError> {
    Ok(slot.lock().map_err(|_| VerifierError::Poisoned)?.take())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh database file in its own directory under the system temp dir.
    fn scratch_store(name: &str) -> (PathBuf, Store) {
        let dir = std::env::temp_dir().join(format!(
            "vigil-pool-{name}-{}-{}",
            std::process::id(),
            crate::attest::unix_now()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let path = dir.join("vigil.db");
        let store = Store::open(&path).expect("open store");
        (dir, store)
    }

    fn entry(i: usize) -> vigil_audit::AuditEntry {
        vigil_audit::AuditEntry {
            kind: "test.write".to_owned(),
            time: 1_700_000_000,
            subject: format!("node-{i}"),
            body: serde_json::json!({ "i": i }),
        }
    }

    /// Queues `count` writes from as many threads while the writer is held, so they are
    /// all waiting when it is released; `job(i)` makes write `i`.
    fn queue_writes<T: Send + 'static>(
        pool: &Arc<StorePool>,
        count: usize,
        job: impl Fn(usize) -> Box<dyn FnOnce(&mut dyn StoreOps) -> Result<T, VerifierError> + Send>,
    ) -> Vec<Result<T, VerifierError>> {
        let held = pool.hold_writer().expect("writer");
        let threads: Vec<_> = (0..count)
            .map(|i| {
                let pool = Arc::clone(pool);
                let work = job(i);
                std::thread::spawn(move || pool.write(work))
            })
            .collect();
        while pool.queued() < count {
            std::thread::yield_now();
        }
        drop(held);
        threads
            .into_iter()
            .map(|t| t.join().expect("writer thread"))
            .collect()
    }

    #[test]
    fn writes_waiting_together_share_one_commit_and_all_are_durable() {
        let (dir, store) = scratch_store("group");
        let key = store.audit_public_key();
        let pool = Arc::new(StorePool::new(store));
        let before = pool.commit_counts();
        let results = queue_writes(&pool, 24, |i| {
            Box::new(move |store: &mut dyn StoreOps| Ok(store.record_event(&entry(i))?))
        });
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        let after = pool.commit_counts();
        assert_eq!(
            after.commits - before.commits,
            1,
            "one commit for the batch"
        );
        assert_eq!(after.writes - before.writes, 24);
        drop(pool);
        // Reopened from disk: every acknowledged write is there and the log verifies.
        let reopened = Store::open(&dir.join("vigil.db")).expect("reopen");
        let conn = reopened.connection();
        assert_eq!(vigil_audit::tree_size(conn).expect("size"), 24);
        vigil_audit::verify_log(conn, &[key]).expect("audit log verifies");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_failing_write_is_undone_alone_and_reported_to_its_caller() {
        let (dir, store) = scratch_store("undo");
        let pool = Arc::new(StorePool::new(store));
        let results = queue_writes(&pool, 5, |i| {
            Box::new(move |store: &mut dyn StoreOps| {
                store.record_event(&entry(i))?;
                if i == 2 {
                    return Err(VerifierError::InvalidRequest("write 2 refuses".into()));
                }
                Ok(i)
            })
        });
        let failed: Vec<usize> = (0..5).filter(|i| results[*i].is_err()).collect();
        assert_eq!(failed, vec![2]);
        assert!(
            matches!(&results[2], Err(VerifierError::InvalidRequest(m)) if m == "write 2 refuses")
        );
        let subjects: Vec<String> = pool
            .read(|store| {
                let mut stmt = store
                    .connection()
                    .prepare("SELECT subject FROM audit_entry ORDER BY idx")
                    .expect("query");
                stmt.query_map([], |row| row.get(0))
                    .expect("rows")
                    .collect::<Result<Vec<String>, _>>()
                    .expect("subjects")
            })
            .expect("read");
        assert_eq!(subjects.len(), 4, "{subjects:?}");
        assert!(!subjects.contains(&"node-2".to_owned()));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn readers_see_acknowledged_writes_and_cannot_write() {
        let (dir, store) = scratch_store("read");
        let pool = StorePool::new(store);
        pool.write(|store| Ok(store.record_event(&entry(0))?))
            .expect("write");
        let size = pool
            .read(|store| vigil_audit::tree_size(store.connection()))
            .expect("read")
            .expect("size");
        assert_eq!(size, 1);
        let refused = pool
            .read(|store| store.insert_nonce(&[7; 32], "node-1", 0, 60))
            .expect("read");
        assert!(refused.is_err(), "a read connection must refuse writes");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn an_in_memory_store_reads_through_the_writer() {
        let pool = StorePool::new(Store::in_memory().expect("memory"));
        pool.write(|store| Ok(store.record_event(&entry(0))?))
            .expect("write");
        let size = pool
            .read(|store| vigil_audit::tree_size(store.connection()))
            .expect("read")
            .expect("size");
        assert_eq!(size, 1);
    }
}
