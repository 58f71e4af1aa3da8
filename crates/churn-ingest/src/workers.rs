//! One bounded pool of file workers, shared by everything that ingests or scores: the webhook,
//! `POST /ingest` and the polling jobs. At most `workers` files are read at once, each on one connection
//! of the service's pool, so a storm of events cannot take more connections than the pool has; the
//! webhook queues at most `queue` files, and leaves the rest in place for the polling job.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The file workers. Cheap to clone: clones share the bound.
#[derive(Debug, Clone)]
pub struct WorkerPool {
    running: Arc<Semaphore>,
    queued: Arc<Semaphore>,
    workers: usize,
}

impl Default for WorkerPool {
    fn default() -> Self {
        // Two cores: one file parsing while another writes.
        Self::new(2, 64)
    }
}

impl WorkerPool {
    /// At most `workers` files at once (at least one), and `queue` waiting events.
    pub fn new(workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        Self {
            running: Arc::new(Semaphore::new(workers)),
            queued: Arc::new(Semaphore::new(queue)),
            workers,
        }
    }

    /// How many files may be read at once.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Runs `work` once a worker is free.
    pub(crate) async fn run<T>(&self, work: impl Future<Output = T>) -> T {
        // Never closed, so acquiring cannot fail; were it closed, the work runs unbounded rather than lost.
        let _worker = self.running.acquire().await.ok();
        work.await
    }

    /// A place in the queue for a file an event announced, or `None` when the queue is full (the file
    /// stays where it landed, for the polling job). Hold it until the file is done.
    pub fn try_queue(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.queued).try_acquire_owned().ok()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn no_more_than_the_workers_run_at_once_and_the_queue_refuses_past_its_size() {
        let pool = WorkerPool::new(2, 3);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (pool, running, most) = (pool.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    pool.run(async {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await;
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);

        let held: Vec<_> = (0..3).map(|_| pool.try_queue().unwrap()).collect();
        assert!(pool.try_queue().is_none());
        drop(held);
        assert!(pool.try_queue().is_some());
    }
}
