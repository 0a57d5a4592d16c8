//! The read-only operations of the PostgreSQL store: listings, history, submissions.
use tether_core::{
    ids::{Epoch, RunKey},
    store::{
        ClaimFilter, HistoryEntry, QuarantinedRun, RunPage, RunQuery, RunRecord, RunState,
        RunSummary, StoreError, SubmissionRecord,
    },
};

use super::{decode_err, sql, PgStore};
use crate::record::{self, SubmissionRow};

impl PgStore {
    pub(super) async fn list_runs_impl(&self) -> Result<Vec<RunRecord>, StoreError> {
        let rows = self.pool.query("list_runs", sql::LIST_RUNS, &[]).await?;
        Ok(rows.iter().filter_map(|r| self.decode(r).ok()).collect())
    }

    /// One grouped count ([`sql::COUNT_RUNS`]).
    pub(super) async fn count_runs_impl(&self) -> Result<Vec<(RunState, String, u64)>, StoreError> {
        let op = "count_runs";
        let rows = self.pool.query(op, sql::COUNT_RUNS, &[]).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let st: String = r.try_get(0).map_err(|e| decode_err(op, e))?;
            let kind: String = r.try_get(1).map_err(|e| decode_err(op, e))?;
            let n: i64 = r.try_get(2).map_err(|e| decode_err(op, e))?;
            if let Ok(state) = st.parse() {
                out.push((state, kind, u64::try_from(n).unwrap_or(0)));
            }
        }
        Ok(out)
    }

    /// One `EXISTS` ([`sql::ANY_UNFINISHED`]).
    pub(super) async fn any_unfinished_impl(
        &self,
        filter: &ClaimFilter,
    ) -> Result<bool, StoreError> {
        let op = "any_unfinished";
        let rows = self
            .pool
            .query(op, sql::ANY_UNFINISHED, &[&filter.host, &filter.kinds])
            .await?;
        // `SELECT EXISTS` always answers one row.
        rows.first()
            .map_or(Ok(false), |r| r.try_get(0).map_err(|e| decode_err(op, e)))
    }

    pub(super) async fn quarantined_impl(&self) -> Result<Vec<QuarantinedRun>, StoreError> {
        let rows = self.pool.query("quarantined", sql::LIST_RUNS, &[]).await?;
        Ok(rows.iter().filter_map(|r| self.decode(r).err()).collect())
    }

    pub(super) async fn history_impl(&self, key: &RunKey) -> Result<Vec<HistoryEntry>, StoreError> {
        let op = "history";
        let rows = self.pool.query(op, sql::HISTORY, &[&key.as_str()]).await?;
        rows.iter()
            .map(|r| {
                let generation: Option<i64> = r.try_get(2).map_err(|e| decode_err(op, e))?;
                Ok(HistoryEntry {
                    at_ms: r.try_get(0).map_err(|e| decode_err(op, e))?,
                    epoch: Epoch(r.try_get(1).map_err(|e| decode_err(op, e))?),
                    generation: generation
                        .map(|g| record::parse_generation(self.loc(), g))
                        .transpose()?,
                    decision: r
                        .try_get::<_, String>(3)
                        .map_err(|e| decode_err(op, e))?
                        .into(),
                    reason: r.try_get(4).map_err(|e| decode_err(op, e))?,
                })
            })
            .collect()
    }

    pub(super) async fn submissions_impl(
        &self,
        key: &RunKey,
    ) -> Result<Vec<SubmissionRecord>, StoreError> {
        let op = "submissions";
        let rows = self
            .pool
            .query(op, sql::SUBMISSIONS, &[&key.as_str()])
            .await?;
        rows.iter()
            .map(|r| {
                let row = (|| {
                    Ok::<_, tokio_postgres::Error>(SubmissionRow {
                        generation: r.try_get(0)?,
                        tag: r.try_get(1)?,
                        shape: r.try_get(2)?,
                        external_id: r.try_get(3)?,
                        outcome: r.try_get(4)?,
                        intent_at_ms: r.try_get(5)?,
                    })
                })()
                .map_err(|e| decode_err(op, e))?;
                row.into_record(self.loc())
            })
            .collect()
    }
    /// One statement ([`sql::LIST_SUMMARIES`]).
    pub(super) async fn list_summaries_impl(
        &self,
        query: &RunQuery,
    ) -> Result<RunPage, StoreError> {
        let op = "list_summaries";
        let states: Option<Vec<&str>> =
            (!query.states.is_empty()).then(|| query.states.iter().map(|s| s.as_str()).collect());
        let kinds: Option<&Vec<String>> = (!query.kinds.is_empty()).then_some(&query.kinds);
        let owners: Option<&Vec<String>> = (!query.owners.is_empty()).then_some(&query.owners);
        let after_at = query.after.as_ref().map(|c| c.updated_at_ms());
        let after_key = query.after.as_ref().map(|c| c.key());
        let limit = query.fetch().map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        let rows = self
            .pool
            .query(
                op,
                sql::LIST_SUMMARIES,
                &[
                    &states,
                    &kinds,
                    &query.since_ms,
                    &after_at,
                    &after_key,
                    &limit,
                    &owners,
                ],
            )
            .await?;
        let mut at = Vec::with_capacity(rows.len());
        for r in &rows {
            let updated: i64 = r.try_get(17).map_err(|e| decode_err(op, e))?;
            let key: String = r.try_get(0).map_err(|e| decode_err(op, e))?;
            at.push((updated, key));
        }
        let paired: Vec<_> = rows.iter().zip(at).collect();
        Ok(query.page_of(
            paired,
            |(_, at)| at.clone(),
            |(r, _)| self.decode(r).ok().map(|rec| RunSummary::from(&rec)),
        ))
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
