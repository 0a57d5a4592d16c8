//! The read-only operations of the SQLite store: listings, history, submissions.
use tether_core::{
    ids::{Epoch, RunKey},
    store::{
        ClaimFilter, HistoryEntry, QuarantinedRun, RunPage, RunQuery, RunRecord, RunState,
        RunSummary, StoreError, SubmissionRecord,
    },
};

use super::{
    open::{map_err, now_ms},
    rows::{decode_row, scan, Decoded},
    sql, SqliteStore,
};
use crate::record::{self, SubmissionRow};

impl SqliteStore {
    pub(super) async fn list_runs_impl(&self) -> Result<Vec<RunRecord>, StoreError> {
        self.with_conn("list_runs", move |c, loc| {
            Ok(scan(c, loc)?
                .into_iter()
                .filter_map(|d| match d {
                    Decoded::Run(r) => Some(r),
                    Decoded::Quarantined(_) => None,
                })
                .collect())
        })
        .await
    }

    /// One grouped count ([`sql::COUNT_RUNS`]).
    pub(super) async fn count_runs_impl(&self) -> Result<Vec<(RunState, String, u64)>, StoreError> {
        self.with_conn("count_runs", move |c, loc| {
            let rows: Vec<(String, String, i64)> = c
                .prepare_cached(sql::COUNT_RUNS)
                .and_then(|mut s| {
                    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                        .collect()
                })
                .map_err(|e| map_err("count_runs", loc, e))?;
            Ok(rows
                .into_iter()
                .filter_map(|(st, kind, n)| {
                    Some((st.parse().ok()?, kind, u64::try_from(n).unwrap_or(0)))
                })
                .collect())
        })
        .await
    }

    /// One `EXISTS` ([`sql::ANY_UNFINISHED`]).
    pub(super) async fn any_unfinished_impl(
        &self,
        filter: &ClaimFilter,
    ) -> Result<bool, StoreError> {
        let host = filter.host.clone();
        let kinds = filter
            .kinds
            .as_ref()
            .map(|k| serde_json::Value::from(k.clone()).to_string());
        self.with_conn("any_unfinished", move |c, loc| {
            c.prepare_cached(sql::ANY_UNFINISHED)
                .and_then(|mut s| s.query_row(rusqlite::params![host, kinds], |r| r.get(0)))
                .map_err(|e| map_err("any_unfinished", loc, e))
        })
        .await
    }

    pub(super) async fn quarantined_impl(&self) -> Result<Vec<QuarantinedRun>, StoreError> {
        self.with_conn("quarantined", move |c, loc| {
            Ok(scan(c, loc)?
                .into_iter()
                .filter_map(|d| match d {
                    Decoded::Quarantined(q) => Some(q),
                    Decoded::Run(_) => None,
                })
                .collect())
        })
        .await
    }

    pub(super) async fn history_impl(&self, key: &RunKey) -> Result<Vec<HistoryEntry>, StoreError> {
        let key = key.clone();
        self.with_conn("history", move |c, loc| {
            let rows: Vec<(i64, i64, Option<i64>, String, String)> = c
                .prepare_cached(sql::HISTORY)
                .and_then(|mut s| {
                    s.query_map([key.as_str()], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                    })?
                    .collect()
                })
                .map_err(|e| map_err("history", loc, e))?;
            rows.into_iter()
                .map(|(at_ms, epoch, generation, decision, reason)| {
                    Ok(HistoryEntry {
                        at_ms,
                        epoch: Epoch(epoch),
                        generation: generation
                            .map(|g| record::parse_generation(loc, g))
                            .transpose()?,
                        decision: decision.into(),
                        reason,
                    })
                })
                .collect()
        })
        .await
    }

    pub(super) async fn submissions_impl(
        &self,
        key: &RunKey,
    ) -> Result<Vec<SubmissionRecord>, StoreError> {
        let key = key.clone();
        self.with_conn("submissions", move |c, loc| {
            let rows: Vec<SubmissionRow> = c
                .prepare_cached(sql::SUBMISSIONS)
                .and_then(|mut s| {
                    s.query_map([key.as_str()], |r| {
                        Ok(SubmissionRow {
                            generation: r.get(0)?,
                            tag: r.get(1)?,
                            shape: r.get(2)?,
                            external_id: r.get(3)?,
                            outcome: r.get(4)?,
                            intent_at_ms: r.get(5)?,
                        })
                    })?
                    .collect()
                })
                .map_err(|e| map_err("submissions", loc, e))?;
            rows.into_iter().map(|r| r.into_record(loc)).collect()
        })
        .await
    }
    /// One statement ([`sql::LIST_SUMMARIES`]); filters are JSON arrays so that their length
    /// does not change the statement (it stays prepared and cached).
    pub(super) async fn list_summaries_impl(
        &self,
        query: &RunQuery,
    ) -> Result<RunPage, StoreError> {
        let q = query.clone();
        let states = (!q.states.is_empty()).then(|| {
            serde_json::to_string(&q.states.iter().map(|s| s.as_str()).collect::<Vec<_>>())
                .unwrap_or_default()
        });
        let kinds =
            (!q.kinds.is_empty()).then(|| serde_json::to_string(&q.kinds).unwrap_or_default());
        let owners =
            (!q.owners.is_empty()).then(|| serde_json::to_string(&q.owners).unwrap_or_default());
        self.with_conn("list_summaries", move |c, loc| {
            let now = now_ms();
            let limit = q
                .fetch()
                .map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
            let (after_at, after_key) = match &q.after {
                Some(c) => (Some(c.updated_at_ms()), Some(c.key().to_string())),
                None => (None, None),
            };
            let rows: Vec<(i64, String, Decoded)> = c
                .prepare_cached(sql::LIST_SUMMARIES)
                .and_then(|mut s| {
                    s.query_map(
                        rusqlite::params![
                            states, kinds, q.since_ms, after_at, after_key, limit, owners
                        ],
                        |r| Ok((r.get(17)?, r.get(0)?, decode_row(r, now, loc))),
                    )?
                    .collect()
                })
                .map_err(|e| map_err("list_summaries", loc, e))?;
            Ok(q.page_of(
                rows,
                |(at, key, _)| (*at, key.clone()),
                |(_, _, d)| match d {
                    Decoded::Run(r) => Some(RunSummary::from(&r)),
                    Decoded::Quarantined(_) => None,
                },
            ))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_listing_statement_reads_no_spec_body() {
        let words: Vec<&str> = super::sql::LIST_SUMMARIES
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '\''))
            .filter(|w| !w.is_empty())
            .collect();
        // `spec` appears once, as the alias of an empty string.
        let at: Vec<usize> = (0..words.len()).filter(|i| words[*i] == "spec").collect();
        assert_eq!(at.len(), 1, "{words:?}");
        assert_eq!(words[at[0] - 2..at[0]], ["''", "AS"]);
    }
}
