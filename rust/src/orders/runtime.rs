//! The tokio runtime the order clients run on: one per process, rebuilt in a forked child.
//!
//! A child forked after the runtime started (multiprocessing's 'fork' start method, pre-fork
//! servers) inherits the runtime's memory but none of its threads: a task spawned there would
//! never run, and every call would hang. So the runtime remembers the process that built it,
//! and a call from another process builds a fresh one. The parent's runtime is leaked in the
//! child, never dropped: dropping it would deregister the parent's sockets from an epoll
//! instance the two processes share, and wait for worker threads that do not exist.
//!
//! The same rule covers what else a client keeps per process (`client::Transport`, the
//! mailbox of `bridge`): each records its process id and is replaced, never dropped, after a
//! fork.

use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};
use std::sync::Mutex;

use tokio::runtime::Runtime;

/// The runtime of this process (null until first use); never freed.
static CURRENT: AtomicPtr<Runtime> = AtomicPtr::new(std::ptr::null_mut());
/// The process that built `CURRENT` (0: none yet).
static OWNER: AtomicU32 = AtomicU32::new(0);
/// Serialises building (first use in a process only); held for no other purpose.
static BUILDING: Mutex<()> = Mutex::new(());
/// Worker threads per runtime (`HARNESS_TOKIO_WORKERS`, read at import).
static WORKERS: AtomicUsize = AtomicUsize::new(1);

/// Set how many worker threads each runtime gets (called once, at module import).
pub fn set_workers(workers: usize) {
    WORKERS.store(workers.max(1), Ordering::Relaxed);
}

/// This process's id (compared with the id a runtime or a pool was built in).
pub fn this_process() -> u32 {
    std::process::id()
}

/// The runtime of this process, built on first use here.
pub fn runtime() -> std::io::Result<&'static Runtime> {
    let pid = this_process();
    if OWNER.load(Ordering::Acquire) == pid {
        // SAFETY: OWNER is stored after CURRENT (both release), so a matching owner means
        // CURRENT points at this process's runtime, which is leaked and so never freed.
        if let Some(runtime) = unsafe { CURRENT.load(Ordering::Acquire).as_ref() } {
            return Ok(runtime);
        }
    }
    let _building = match BUILDING.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    };
    if OWNER.load(Ordering::Acquire) == pid {
        // SAFETY: as above; another thread of this process built it while we waited.
        if let Some(runtime) = unsafe { CURRENT.load(Ordering::Acquire).as_ref() } {
            return Ok(runtime);
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(WORKERS.load(Ordering::Relaxed))
        .thread_name("harness-tokio")
        .build()?;
    // Leaked on purpose: see the module docs (an inherited runtime is never dropped).
    let runtime: &'static Runtime = Box::leak(Box::new(runtime));
    CURRENT.store(std::ptr::from_ref(runtime).cast_mut(), Ordering::Release);
    OWNER.store(pid, Ordering::Release);
    Ok(runtime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_runtime_per_process_that_runs_tasks() {
        let first = runtime().unwrap();
        let second = runtime().unwrap();
        assert!(std::ptr::eq(first, second));
        assert_eq!(first.block_on(async { 2 + 2 }), 4);
        let spawned = first.spawn(async { this_process() });
        assert_eq!(first.block_on(spawned).unwrap(), this_process());
    }
}
