//! `tether`: run external jobs crash-safely. See `tether --help` and the README.
//!
//! Exit codes: 0 succeeded, 1 job failed, 2 bad input or usage, 3 cancelled,
//! 4 status unknown after `status_timeout` (the run stays resumable), 5 lease lost (another
//! owner drives the run; this process stood down), 130 interrupted (job left running).
#[macro_use]
mod io;
mod args;
mod commands;
mod fault;
mod joblogs;
mod logging;
#[cfg(feature = "otlp")]
mod otlp;
mod output;
mod progress;
mod style;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc's malloc: a worker holding tens of thousands of runs allocates
/// and frees small blocks on every thread, and glibc's arenas fragmented (RSS grew ~8 KiB per
/// run in flight, and `malloc_consolidate` was among the busiest functions of the worker).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` (mimalloc 2 and 3; `libmimalloc-sys` has no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> ExitCode {
    // Return freed memory to the system at once instead of 10 ms later (mimalloc's default):
    // a worker that starts 100,000 runs frees most of what starting them took while it
    // allocates for the runs it keeps (the fleet bench's 100,000-run row, 2026-12-02: RSS
    // 549-622 MiB in three runs with it, 648 MiB without; CPU unchanged within noise).
    // SAFETY: sets an integer option of the allocator; valid at any time.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0)
    };
    let argv: Vec<String> = std::env::args().collect();
    // The local supervisor runs inside this binary so installs need one file. It must not start
    // an async runtime: it is a small synchronous process that outlives us.
    if argv.get(1).map(String::as_str) == Some("__supervise") {
        let code = tether_connectors::local::supervisor::supervise_main(&argv[2..]);
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let cli = args::Cli::parse();
    // Kept to the end: dropping it flushes the spans not yet exported.
    let _tracing = logging::init(&cli);
    // `tether run` drives one run: one thread does it, and one more makes its blocking calls
    // (the SQLite store's, one after the other anyway: they share one connection). Worker
    // threads of a multi-thread runtime only added start-up, wake-ups across threads and TLB
    // shootdowns to its durable path; with a blocking pool free to grow, a run started four
    // more threads than a plain run, ~1 ms of its durability overhead (fleet bench,
    // 2026-12-02: 7 ms → 6 ms, twice each). None of these calls waits for another.
    let mut builder = match cli.command {
        args::Command::Run(_) => {
            let mut b = tokio::runtime::Builder::new_current_thread();
            b.max_blocking_threads(1);
            b
        }
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    // An idle blocking thread ends after 1 s, not 10: each keeps the allocator pages it filled
    // (rows read from the store, freed later by other threads) until it allocates again or
    // ends. A worker that had just started 100,000 runs held ~110 MiB in the ~20 threads of
    // that burst for the 10 s they idled (the fleet bench's 100,000-run row, 2026-12-02).
    builder.thread_keep_alive(std::time::Duration::from_secs(1));
    if !matches!(cli.command, args::Command::Run(_)) {
        // At most eight blocking threads (tokio allows 512): the SQLite store, their main user,
        // puts four reads and one commit on threads at a time (`tether_store::sqlite`), and no
        // blocking call waits for another. A pool free to grow still reached ~30 threads in a
        // worker's burst of 100,000 starts, each with its allocator pages: peak RSS 499-506 MiB
        // against 299 MiB with this bound (fleet bench, 2026-12-02).
        builder.max_blocking_threads(8);
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            diag!("tether: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let code = runtime.block_on(commands::dispatch(cli));
    // Do not wait for blocking tasks (e.g. a store call) once the answer is known.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    ExitCode::from(code)
}
