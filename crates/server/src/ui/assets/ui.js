// tether UI: live updates of the server-rendered pages. Calls the API with the page's cookie
// (same origin); builds nodes with textContent only (never HTML from data).
"use strict";
(function () {
  const page = document.body.dataset.page;
  const arg = document.body.dataset.arg || "";
  const FINISHED = ["succeeded", "failed", "cancelled"];

  async function api(path, options) {
    const r = await fetch(path, Object.assign({ credentials: "same-origin" }, options || {}));
    let body = null;
    try { body = await r.json(); } catch (_) { body = null; }
    return { ok: r.ok, status: r.status, body: body };
  }

  function el(tag, attrs, children) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, v);
    for (const c of children || []) n.append(c);
    return n;
  }

  function setText(node, text) { if (node && node.textContent !== text) node.textContent = text; }

  // ---- runs table ----
  function stateCell(td, run) {
    td.replaceChildren(el("span", { class: "badge" }, [run.state]));
    if (run.failure_class) td.append(" ", el("span", { class: "class" }, [run.failure_class]));
  }

  function runRow(run) {
    const tr = el("tr", { "data-key": run.key, "data-state": run.state });
    const link = el("a", { href: "/ui/runs/" + encodeURIComponent(run.key) }, [run.key]);
    const cells = [["Key", link], ["State", null], ["Kind", run.kind], ["Gen", ""],
      ["Owner", ""], ["Updated", ""]];
    for (const [label, content] of cells) {
      const td = el("td", { "data-label": label }, content === null ? [] : [content]);
      if (label === "State") td.className = "state";
      if (label === "Updated") td.className = "updated";
      tr.append(td);
    }
    return tr;
  }

  function updateRow(tr, run) {
    const badge = tr.querySelector(".state .badge");
    if (tr.dataset.state !== run.state || !badge || badge.textContent !== run.state) {
      tr.dataset.state = run.state;
      stateCell(tr.querySelector("td.state"), run);
    }
    const tds = tr.querySelectorAll("td");
    setText(tds[3], run.generation == null ? "–" : String(run.generation));
    setText(tds[4], run.owner == null ? "–" : run.owner);
    setText(tds[5], run.updated_at);
  }

  async function pollRuns() {
    const table = document.getElementById("runs");
    const r = await api("/api/v1/runs?limit=200");
    if (!r.ok || !r.body) return;
    const rows = new Map();
    for (const tr of table.tBodies[0].rows) rows.set(tr.dataset.key, tr);
    const fresh = [];
    for (const run of r.body.runs) {
      const tr = rows.get(run.key);
      if (tr) updateRow(tr, run);
      else if (!arg || arg === run.state) {
        const row = runRow(run);
        updateRow(row, run);
        fresh.push(row);
      }
    }
    if (fresh.length) {
      table.tBodies[0].prepend(...fresh);
      const empty = document.getElementById("empty");
      if (empty) empty.remove();
    }
  }

  // ---- one run ----
  let polling = null;
  function startRunPolling() {
    if (polling) return;
    pollRun();
    polling = setInterval(pollRun, 2000);
  }

  async function pollRun() {
    const key = encodeURIComponent(arg);
    const r = await api("/api/v1/runs/" + key);
    if (!r.ok || !r.body) return;
    const run = r.body;
    const state = document.getElementById("state");
    state.dataset.state = run.state;
    setText(state, run.state);
    document.getElementById("cancel").disabled = FINISHED.includes(run.state);
    renderGenerations(run.submissions || []);
    const h = await api("/api/v1/runs/" + key + "/history");
    if (h.ok && Array.isArray(h.body)) renderTimeline(h.body);
    if (FINISHED.includes(run.state) && polling) {
      clearInterval(polling);
      polling = null;
    }
  }

  function renderTimeline(entries) {
    const ol = document.getElementById("timeline");
    for (let i = ol.children.length; i < entries.length; i++) {
      const e = entries[i];
      const li = el("li", { "data-kind": e.decision }, [
        el("time", { datetime: e.at }, [e.at]), " ", el("span", { class: "kind" }, [e.decision])]);
      if (e.generation != null) li.append(" ", el("span", { class: "muted" }, ["gen " + e.generation]));
      li.append(" ", el("span", { class: "muted" }, ["epoch " + e.epoch]));
      if (e.owner) li.append(" ", el("span", { class: "owner" }, [e.owner]));
      li.append(el("div", { class: "reason" }, [e.reason]));
      ol.append(li);
    }
  }

  function renderGenerations(subs) {
    const tbody = document.getElementById("generations").tBodies[0];
    subs.forEach((s, i) => {
      const outcome = s.outcome ? outcomeLabel(s.outcome) : "–";
      const cells = [["Gen", String(s.generation)], ["Shape", s.submission.shape],
        ["Tag", s.submission.tag], ["Job", s.external_id || "–"], ["Outcome", outcome],
        ["Intent", s.intent_at]];
      let tr = tbody.rows[i];
      if (!tr) {
        tr = el("tr", { "data-generation": String(s.generation) });
        for (const [label] of cells) tr.append(el("td", { "data-label": label }));
        tbody.append(tr);
      }
      cells.forEach(([, text], j) => setText(tr.cells[j], text));
    });
  }

  // An outcome as `Outcome::label` words it: succeeded, failed: CLASS, cancelled.
  function outcomeLabel(o) {
    if (o.outcome === "failed") return "failed: " + o.class;
    return o.outcome;
  }

  function followLogs() {
    const pre = document.getElementById("logs");
    const es = new EventSource("/api/v1/runs/" + encodeURIComponent(arg) + "/logs?follow=true");
    const append = (text) => {
      const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.append(text);
      // Bounded: keep the last 1 MiB of text.
      if (pre.textContent.length > 1 << 20) pre.textContent = pre.textContent.slice(-(1 << 19));
      if (atEnd) pre.scrollTop = pre.scrollHeight;
    };
    es.addEventListener("log", (e) => append(e.data + "\n"));
    es.addEventListener("end", () => { es.close(); pre.dataset.ended = "true"; });
    es.addEventListener("error", (e) => {
      // A named `error` event carries the API's error; a bare one is the connection failing:
      // reconnecting would read the log again from its start, so stop instead.
      let msg = "log stream interrupted";
      if (e.data) { try { msg = JSON.parse(e.data).error.message; } catch (_) { msg = e.data; } }
      es.close();
      pre.dataset.ended = "error";
      append("[" + msg + "]\n");
    });
  }

  async function action(button, what, question) {
    if (!window.confirm(question)) return;
    const out = document.getElementById("action-result");
    button.disabled = true;
    const r = await api("/api/v1/runs/" + encodeURIComponent(arg) + "/" + what, { method: "POST" });
    button.disabled = false;
    if (r.ok) {
      setText(out, what === "cancel" ? "cancel requested" : "rerun queued");
      startRunPolling();
      if (what === "rerun") followLogs();
    } else {
      setText(out, (r.body && r.body.error && r.body.error.message) || ("failed: HTTP " + r.status));
    }
  }

  // ---- fleet: the server renders the table; swap in a fresh one ----
  async function pollFleet() {
    const r = await fetch(location.pathname, { credentials: "same-origin" });
    if (!r.ok) return;
    const doc = new DOMParser().parseFromString(await r.text(), "text/html");
    const fresh = doc.getElementById("workers");
    const old = document.getElementById("workers");
    if (fresh && old) old.tBodies[0].replaceWith(fresh.tBodies[0]);
  }

  if (page === "runs") setInterval(pollRuns, 2000);
  if (page === "run") {
    document.getElementById("cancel").addEventListener("click", (e) =>
      action(e.currentTarget, "cancel", "Cancel run " + arg + "? Its job is killed."));
    document.getElementById("rerun").addEventListener("click", (e) =>
      action(e.currentTarget, "rerun", "Rerun " + arg + "? A fresh instance is queued."));
    startRunPolling();
    followLogs();
  }
  if (page === "fleet") setInterval(pollFleet, 2000);
})();
