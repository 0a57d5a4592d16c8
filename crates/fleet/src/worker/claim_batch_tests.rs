//! The claim batch under a backlog.
use super::{next_claim_batch, CLAIM_BATCH, MAX_CLAIM_BATCH};

#[test]
fn the_claim_batch_grows_under_a_backlog_and_falls_back_after_it() {
    let mut batch = CLAIM_BATCH;
    let mut claims = 0;
    let mut claimed = 0;
    // 10,000 queued runs: fixed batches of 64 took 157 claims in a row.
    while claimed < 10_000 {
        claimed += batch;
        claims += 1;
        batch = next_claim_batch(batch, true);
    }
    assert_eq!(batch, MAX_CLAIM_BATCH);
    assert!(claims <= 14, "{claims} claims for 10,000 runs");
    assert_eq!(next_claim_batch(MAX_CLAIM_BATCH, false), CLAIM_BATCH);
}
