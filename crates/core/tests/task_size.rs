//! A worker holds a task per run being driven (issue 15: 100,000 runs in one worker; parked
//! runs hold none, but a tick's worth of them are driven at once). The rare branches are boxed
//! and the driver's state is a box of its own (also what a parked run is), so the future is
//! little more than the wait for the next status.
mod common;

use std::sync::Arc;

use common::*;
use tether_core::engine::{Engine, LeaseSettings, Quiet, RunSignals};
use tether_testkit::ScriptedConnector;

/// An engine over a store holding one acquired run, whose job is active, then succeeded.
async fn engine() -> (
    Engine,
    tether_core::store::Lease,
    tether_core::store::RunRecord,
) {
    let store = store().await;
    let (lease, record) = acquire(&store, "me").await;
    let c = Arc::new(ScriptedConnector::new(vec![active(), succeeded()]));
    let leases = LeaseSettings {
        ttl: TTL,
        follow_interval: std::time::Duration::from_millis(10),
    };
    let engine = Engine::new(store, c, policy(), leases, Arc::new(Quiet));
    (engine, lease, record)
}

#[tokio::test]
async fn the_drive_future_stays_small() {
    let (engine, lease, record) = engine().await;
    let drive = engine.drive_parking(&lease, record, RunSignals::new());
    let size = std::mem::size_of_val(&drive);
    eprintln!("drive future: {size} bytes");
    // Measured (debug): 464 bytes; 1,064 with the driver's state inline, 2,424 before the rare
    // branches were boxed and the driver kept once.
    let bound = 600;
    assert!(
        size <= bound,
        "the drive future is {size} bytes (bound {bound})"
    );
    drive.await.unwrap();
}

/// `tether run`'s drive (it never parks) is the worker's and little more.
#[tokio::test]
async fn the_foreground_drive_future_holds_the_drive_once() {
    let (engine, lease, record) = engine().await;
    // Futures do nothing until polled: this one is only measured.
    let worker =
        std::mem::size_of_val(&engine.drive_parking(&lease, record.clone(), RunSignals::new()));
    let drive = engine.drive(&lease, record, RunSignals::new());
    let size = std::mem::size_of_val(&drive);
    eprintln!("foreground drive future: {size} bytes, the worker's {worker}");
    // Measured (debug): 930 bytes when it held the worker's drive future twice.
    assert!(
        size <= worker + 128,
        "the foreground drive future is {size} bytes, the worker's {worker}"
    );
    drive.await.unwrap();
}
