//! The local backend's supervisor as a binary of its own, for this crate's tests and for
//! programs that embed the connectors without the `tether` CLI (which offers the same as its
//! hidden `tether __supervise` subcommand).
//!
//! Usage: `tether-supervisor launch|run <job dir>` (started by the local connector itself).
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(tether_connectors::local::supervise_main(&args));
}
