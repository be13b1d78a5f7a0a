//! Two lanes of CPU threads, so that a small request is never stuck behind a large one.
//!
//! Every operation's work is counted before it runs ([`sextant_engine::budget`]). Work up to
//! `--interactive-max-path-steps` runs in the *interactive* lane, the rest (and the nightly
//! re-score) in the *bulk* lane. Each lane has its own rayon pool, one thread per core, and its
//! own places (one operation per core computing at once, so a lane full of large requests
//! never holds a small one's place). The bulk lane's threads run at a lower priority (nice
//! 10 on Linux): while both lanes have work the kernel gives the interactive threads about
//! nine tenths of the cores, and when only bulk work is left it has every core. A large
//! request is thus slowed only while small ones are actually running, and small ones keep
//! their latency (benches/RESULTS.md, "Fair sharing").

use std::sync::Arc;

use tokio::sync::Semaphore;

/// The nice value of the bulk lane's threads (0 is normal, 19 the lowest).
const BULK_NICENESS: i32 = 10;

/// One lane: its threads and its places.
#[derive(Clone)]
pub struct Lane {
    /// `interactive` or `bulk` (for metrics and logs).
    pub name: &'static str,
    pub pool: Arc<rayon::ThreadPool>,
    /// Operations computing at once in this lane: one per thread.
    pub workers: Arc<Semaphore>,
}

/// The interactive and the bulk lane, and where the line between them is.
#[derive(Clone)]
pub struct Lanes {
    pub interactive: Lane,
    pub bulk: Lane,
    /// Largest work (path-steps) that runs in the interactive lane.
    pub interactive_max: u64,
}

impl Lanes {
    /// Lanes of `threads` threads each.
    pub fn new(threads: usize, interactive_max: u64) -> std::io::Result<Lanes> {
        let threads = threads.max(1);
        let lane = |name: &'static str, niceness: i32| -> std::io::Result<Lane> {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(move |i| format!("sextant-{name}-{i}"))
                .start_handler(move |_| lower_priority(niceness))
                .build()
                .map_err(std::io::Error::other)?;
            Ok(Lane {
                name,
                pool: Arc::new(pool),
                workers: Arc::new(Semaphore::new(threads)),
            })
        };
        Ok(Lanes {
            interactive: lane("interactive", 0)?,
            bulk: lane("bulk", BULK_NICENESS)?,
            interactive_max,
        })
    }

    /// The lane for work of `path_steps`.
    pub fn for_work(&self, path_steps: u64) -> &Lane {
        if path_steps <= self.interactive_max {
            &self.interactive
        } else {
            &self.bulk
        }
    }
}

/// Lower the calling thread's priority by `niceness` (Linux schedules threads one by one, so
/// this touches only the thread that calls it). Elsewhere, or when refused, the lane keeps the
/// normal priority and still has its own places.
fn lower_priority(niceness: i32) {
    if niceness == 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority reads its integer arguments only; `0` is the calling thread.
        let refused = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, niceness) } != 0;
        if refused {
            tracing::warn!(niceness, "the bulk lane's threads keep the normal priority");
        }
    }
}
