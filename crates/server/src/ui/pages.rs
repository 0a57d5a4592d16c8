//! The pages' markup (maud: every interpolated value is HTML-escaped by the macro).
//!
//! The element ids and data attributes are a contract with the pages' script and the browser
//! tests: `#runs` rows `tr[data-key][data-state]`; `#state`, `#timeline li[data-kind]`,
//! `#generations`, `#job-link`, `#logs`, `#cancel`, `#rerun` on a run; `#workers` rows
//! `tr[data-owner]` on the fleet.
use axum::http::StatusCode;
use maud::{html, Markup, DOCTYPE};
use tether_fleet::view::{HistoryEntryView, RunListView, RunView, WorkerView};

/// The states the runs page filters by.
const STATES: [&str; 5] = ["queued", "running", "succeeded", "failed", "cancelled"];

fn layout(title: &str, active: &str, attrs: (&str, &str), body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · tether" }
                link rel="stylesheet" href="/ui/assets/ui.css";
                script src="/ui/assets/ui.js" defer {}
            }
            body data-page=(attrs.0) data-arg=(attrs.1) {
                header.top {
                    a.brand href="/ui/runs" { "tether" }
                    nav {
                        a href="/ui/runs" aria-current=[(active == "runs").then_some("page")] { "Runs" }
                        a href="/ui/fleet" aria-current=[(active == "fleet").then_some("page")] { "Fleet" }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The runs table, filtered by `state` when given.
pub(super) fn runs(list: &RunListView, state: Option<&str>) -> Markup {
    let body = html! {
        h1 { "Runs" }
        nav.filters aria-label="Filter by state" {
            a href="/ui/runs" aria-current=[state.is_none().then_some("page")] { "all" }
            @for s in STATES {
                a href={ "/ui/runs?state=" (s) } data-state=(s)
                    aria-current=[(state == Some(s)).then_some("page")] { (s) }
            }
        }
        table #runs.cards {
            thead { tr { th { "Key" } th { "State" } th { "Kind" } th { "Gen" } th { "Owner" } th { "Updated" } } }
            tbody {
                @for r in &list.runs {
                    tr data-key=(r.key) data-state=(r.state) {
                        td data-label="Key" { a href={ "/ui/runs/" (path_segment(r.key.as_str())) } { (r.key) } }
                        td.state data-label="State" {
                            span.badge { (r.state) }
                            @if let Some(c) = r.failure_class { " " span.class { (c) } }
                        }
                        td data-label="Kind" { (r.kind) }
                        td data-label="Gen" { @if let Some(g) = r.generation { (g) } @else { "–" } }
                        td data-label="Owner" { @if let Some(o) = &r.owner { (o) } @else { "–" } }
                        td.updated data-label="Updated" { time datetime=(r.updated_at) { (r.updated_at) } }
                    }
                }
            }
        }
        @if list.runs.is_empty() { p #empty.muted { "No runs" @if let Some(s) = state { " in state " (s) } "." } }
        @if list.next.is_some() { p.muted { "The 200 most recently changed runs are shown; `tether ls` lists all." } }
    };
    layout("Runs", "runs", ("runs", state.unwrap_or("")), body)
}

/// One run: state, job link, actions, logs, timeline, generations.
pub(super) fn run(view: &RunView, history: &[HistoryEntryView], job_link: Option<&str>) -> Markup {
    let body = html! {
        h1 { (view.key) }
        div.summary {
            span #state.badge data-state=(view.state) { (view.state) }
            @if let Some(c) = view.failure_class { " " span.class { (c) } }
            @if view.cancel_requested { " " span.class #cancel-requested { "cancel requested" } }
            dl {
                dt { "Kind" } dd { (view.kind) }
                dt { "Spec" } dd { (view.spec_name) }
                dt { "Generation" } dd { @if let Some(g) = view.generation { (g) } @else { "–" } }
                dt { "Job" } dd {
                    @if let Some(id) = &view.external_id {
                        @if let Some(href) = job_link {
                            a #job-link href=(href) target="_blank" rel="noopener noreferrer" { (id) }
                        } @else { code { (id) } }
                    } @else if let Some(href) = job_link {
                        a #job-link href=(href) target="_blank" rel="noopener noreferrer" { "backend UI" }
                    } @else { "–" }
                }
                dt { "Owner" } dd { @if let Some(o) = &view.owner { (o) " " span.muted { (if view.lease_alive { "(lease alive)" } else { "(lease expired)" }) } } @else { "–" } }
                dt { "Epoch" } dd { (view.epoch) }
                dt { "Created" } dd { time datetime=(view.created_at) { (view.created_at) } }
                dt { "Updated" } dd { time datetime=(view.updated_at) { (view.updated_at) } }
                @if let Some(m) = &view.message { dt { "Message" } dd #message { (m) } }
            }
            div.actions {
                button #cancel type="button" disabled[view.state != "queued" && view.state != "running"] { "Cancel" }
                button #rerun type="button" { "Rerun" }
                span #action-result.muted role="status" {}
            }
        }
        section {
            h2 { "Logs" }
            pre #logs tabindex="0" aria-live="off" {}
        }
        section {
            h2 { "Timeline" }
            ol #timeline {
                @for e in history {
                    li data-kind=(e.decision) {
                        time datetime=(e.at) { (e.at) }
                        " " span.kind { (e.decision) }
                        @if let Some(g) = e.generation { " " span.muted { "gen " (g) } }
                        " " span.muted { "epoch " (e.epoch) }
                        @if let Some(o) = &e.owner { " " span.owner { (o) } }
                        div.reason { (e.reason) }
                    }
                }
            }
        }
        section {
            h2 { "Generations" }
            table #generations.cards {
                thead { tr { th { "Gen" } th { "Shape" } th { "Tag" } th { "Job" } th { "Outcome" } th { "Intent" } } }
                tbody {
                    @for s in &view.submissions {
                        tr data-generation=(s.generation) {
                            td data-label="Gen" { (s.generation) }
                            td data-label="Shape" { (s.record.submission.shape.as_str()) }
                            td data-label="Tag" { code { (s.record.submission.tag) } }
                            td data-label="Job" { @if let Some(id) = &s.record.external_id { code { (id) } } @else { "–" } }
                            td data-label="Outcome" {
                                @if let Some(o) = &s.record.outcome { (o.label()) } @else { "–" }
                            }
                            td data-label="Intent" { time datetime=(s.intent_at) { (s.intent_at) } }
                        }
                    }
                }
            }
        }
    };
    layout(view.key.as_str(), "runs", ("run", view.key.as_str()), body)
}

/// The workers and the runs each holds.
pub(super) fn fleet(workers: &[WorkerView]) -> Markup {
    let body = html! {
        h1 { "Fleet" }
        p.muted { "Every registered worker, idle or not, and any other owner of an unfinished run. A worker silent for " (tether_fleet::view::GONE_AFTER_TTLS) " lease TTLs is gone (" code { "tether prune" } " removes it)." }
        table #workers.cards {
            thead { tr { th { "Owner" } th { "Heartbeat" } th { "Runs held" } } }
            tbody {
                @for w in workers {
                    tr data-owner=(w.owner) data-alive=(w.alive) data-gone=(w.gone) data-registered=(w.registered) {
                        td data-label="Owner" {
                            (w.owner) " "
                            span.badge data-state=(if w.alive { "running" } else { "failed" }) {
                                (match (w.alive, w.registered) { (true, _) => "alive", (false, true) => "gone", (false, false) => "lease expired" })
                            }
                            @if let (Some(host), Some(pid)) = (&w.host, w.pid) {
                                br; span.muted { (host) " pid " (pid) }
                                @if let Some(c) = w.concurrency { span.muted { " · up to " (c) " runs" } }
                                @if let Some(v) = &w.version { span.muted { " · v" (v) } }
                            }
                        }
                        td.heartbeat data-label="Heartbeat" {
                            @if let Some(ms) = w.heartbeat_age_ms { (age(ms)) " ago" } @else { "–" }
                        }
                        td data-label="Runs held" {
                            ul.held {
                                @for r in &w.runs {
                                    li data-key=(r.key) {
                                        a href={ "/ui/runs/" (path_segment(r.key.as_str())) } { (r.key) }
                                        " " span.muted { (r.state) }
                                        @if let Some(at) = &r.lease_expires_at {
                                            " " span.muted { "lease until " } time.expiry datetime=(at) { (at) }
                                        }
                                    }
                                }
                            }
                            @if w.runs.is_empty() { span.muted.idle { "idle" } }
                        }
                    }
                }
            }
        }
        @if workers.is_empty() { p #empty.muted { "No worker is registered and no owner holds an unfinished run." } }
    };
    layout("Fleet", "fleet", ("fleet", ""), body)
}

/// A refusal (no or unknown token).
pub(super) fn refused(why: &str) -> Markup {
    layout(
        "Token needed",
        "",
        ("refused", ""),
        html! { h1 { "Token needed" } p { (why) } },
    )
}

/// An error of the store or of the request.
pub(super) fn error(status: StatusCode, message: &str) -> Markup {
    let title = status.canonical_reason().unwrap_or("Error");
    layout(
        title,
        "",
        ("error", ""),
        html! { h1 { (status.as_u16()) " " (title) } p #error { (message) } },
    )
}

/// A run key as one URL path segment (keys may hold characters a path treats specially).
fn path_segment(key: &str) -> String {
    url::form_urlencoded::byte_serialize(key.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// A duration in ms, shortly: `850ms`, `4.2s`, `3m 05s`.
fn age(ms: i64) -> String {
    match ms {
        ..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        _ => format!("{}m {:02}s", ms / 60_000, (ms % 60_000) / 1000),
    }
}
