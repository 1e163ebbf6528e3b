// The instance page: summary, step timeline, definition graph, errors, events, data,
// logs; re-read whenever the server says the workflow changed.
"use strict";

const workflowId = decodeURIComponent(location.pathname.split("/").pop());
let current = null;
let shownData = null;
let logAfter = 0;
let logCount = 0;

function fact(label, value, extra) {
  if (value === null || value === undefined || value === "") return null;
  return wfe.el("div", {}, wfe.el("dt", { text: label }), wfe.el("dd", { class: extra || "" }, value));
}

function renderSummary(w) {
  document.title = `wfe · ${w.definition_id} ${w.reference || w.id}`;
  document.getElementById("summary").hidden = false;
  const status = document.getElementById("status");
  status.replaceWith(Object.assign(wfe.pill(w.status), { id: "status" }));
  document.getElementById("wid").textContent = w.id;
  document.getElementById("facts").replaceChildren(...[
    fact("definition", `${w.definition_id} v${w.version}`),
    fact("reference", w.reference),
    fact("description", w.description),
    fact("created", wfe.when(w.create_time)),
    fact("ended", wfe.when(w.complete_time)),
    fact("duration", wfe.duration(w.duration !== null ? w.duration : (Date.parse(w.now) - Date.parse(w.create_time)) / 1000)),
    fact("next run", w.status === "RUNNABLE" ? wfe.when(w.next_execution) : ""),
    fact("definition known here", w.definition_known ? "yes" : "no (graph unavailable)"),
  ].filter(Boolean));
  const actions = document.getElementById("actions");
  const s = wfe.session;
  actions.hidden = !(s && s.allow_actions && s.logged_in);
  for (const button of actions.querySelectorAll("button[data-action]")) {
    const action = button.dataset.action;
    button.disabled = (action === "suspend" && w.status !== "RUNNABLE")
      || (action === "resume" && w.status !== "SUSPENDED")
      || (action === "terminate" && (w.status === "COMPLETE" || w.status === "TERMINATED"));
  }
}

function renderGantt(w) {
  const box = document.getElementById("gantt");
  const steps = w.steps;
  document.getElementById("step-count").textContent = `${steps.length} pointer(s)`;
  if (!steps.length) { box.replaceChildren(wfe.el("p", { class: "muted", text: "No steps yet." })); return; }
  const now = Date.parse(w.now);
  const t0 = Math.min(Date.parse(w.create_time), ...steps.filter((s) => s.start_time).map((s) => Date.parse(s.start_time)));
  const ends = steps.map((s) => (s.end_time ? Date.parse(s.end_time) : s.start_time ? now : t0));
  const t1 = Math.max(w.complete_time ? Date.parse(w.complete_time) : now, ...ends, t0 + 1);
  const span = t1 - t0;
  const pct = (t) => (100 * (t - t0)) / span;
  const errorsByPointer = {};
  for (const e of w.errors) (errorsByPointer[e.pointer_id] = errorsByPointer[e.pointer_id] || []).push(e);
  const rows = [];
  for (const s of steps) {
    const name = wfe.el("div", { class: "name", title: s.name }, s.name);
    name.style.paddingLeft = Math.min(s.scope.length, 8) * 14 + "px"; // inside its containers
    const state = wfe.el("div", { class: "state" },
      wfe.pill(s.status),
      s.retry_count ? wfe.el("span", { class: "retry", text: `↻${s.retry_count}`, title: `${s.retry_count} retr${s.retry_count === 1 ? "y" : "ies"}` }) : null);
    const track = wfe.el("div", { class: "track" });
    if (s.start_time) {
      const start = Date.parse(s.start_time);
      const end = s.end_time ? Date.parse(s.end_time) : now;
      const bar = wfe.el("div", {
        class: "bar s-" + s.status + (s.end_time ? "" : " open"),
        title: `${s.name}: ${s.status.toLowerCase()}\nstarted ${wfe.when(s.start_time)}` + (s.end_time ? `\nended ${wfe.when(s.end_time)}` : "") + (s.retry_count ? `\nretries ${s.retry_count}` : ""),
      });
      bar.style.left = pct(start) + "%";
      bar.style.width = Math.max(pct(end) - pct(start), 0.3) + "%";
      track.append(bar);
    }
    for (const e of errorsByPointer[s.pointer_id] || []) {
      const tick = wfe.el("div", { class: "tick", title: `${wfe.when(e.time)}: ${e.message.split("\n")[0]}` });
      tick.style.left = pct(Date.parse(e.time)) + "%";
      track.append(tick);
    }
    const dur = s.duration !== null ? s.duration : s.start_time ? (now - Date.parse(s.start_time)) / 1000 : null;
    rows.push(wfe.el("div", { class: "step", "data-pointer-id": s.pointer_id, "data-step": s.name, "data-status": s.status }));
    const row = rows[rows.length - 1];
    row.append(name, state, track, wfe.el("div", { class: "dur", text: wfe.duration(dur) }));
  }
  const axis = wfe.el("div", { class: "axis" },
    wfe.el("span", { text: wfe.when(new Date(t0).toISOString()) }),
    wfe.el("span", { text: wfe.duration(span / 1000) }),
    wfe.el("span", { text: wfe.when(new Date(t1).toISOString()) }));
  box.replaceChildren(...rows, wfe.el("div", {}), wfe.el("div", {}), axis);
}

function renderGraph(w) {
  const box = document.getElementById("graph");
  if (w.graph_svg) {
    const doc = new DOMParser().parseFromString(w.graph_svg, "image/svg+xml");
    const svg = doc.documentElement;
    if (svg && svg.nodeName.toLowerCase() === "svg") {
      // Its inline <style> is refused by the CSP anyway: app.css styles the graph.
      for (const bad of svg.querySelectorAll("script, foreignObject, style")) bad.remove();
      box.replaceChildren(document.importNode(svg, true));
      return;
    }
  }
  box.replaceChildren(wfe.el("p", { class: "muted", text: "This workflow's definition is not registered in this process, so its graph cannot be drawn (wfe ui loads the definitions remembered next to the store)." }));
}

function renderErrors(w) {
  document.getElementById("error-count").textContent = w.errors.length ? `(${w.errors.length})` : "";
  const box = document.getElementById("errors");
  if (!w.errors.length) { box.replaceChildren(wfe.el("p", { class: "muted", text: "No errors." })); return; }
  box.replaceChildren(...w.errors.slice().reverse().map((e) => wfe.el("div", { class: "error" },
    wfe.el("div", { class: "when", text: `${wfe.when(e.time)}${e.step ? " · " + e.step : ""}` }),
    wfe.el("pre", { text: e.message }))));
}

function renderSubs(w) {
  const subs = w.subscriptions;
  document.getElementById("sub-count").textContent = subs.length ? `(${subs.length})` : "";
  const box = document.getElementById("subs");
  if (!subs.length) { box.replaceChildren(wfe.el("p", { class: "muted", text: "This workflow waited for no event." })); return; }
  const head = wfe.el("tr", {}, ...["Step", "Event", "Key", "State", "Data"].map((h) => wfe.el("th", { text: h })));
  const rows = subs.map((s) => wfe.el("tr", {},
    wfe.el("td", { text: s.step || "" }), wfe.el("td", { class: "mono", text: s.event_name }),
    wfe.el("td", { class: "mono", text: s.event_key || "" }),
    wfe.el("td", {}, wfe.el("span", { class: "pill " + ({ received: "s-COMPLETE", waiting: "s-WAITING_FOR_EVENT" }[s.state] || "s-CANCELLED"), text: s.state })),
    wfe.el("td", { class: "mono", text: s.data === null ? "" : JSON.stringify(s.data) })));
  box.replaceChildren(wfe.el("table", { class: "small" }, wfe.el("thead", {}, head), wfe.el("tbody", {}, ...rows)));
}

function jsonNode(value, key, depth) {
  const label = key === null ? [] : [wfe.el("span", { class: "k", text: JSON.stringify(key) }), ": "];
  if (value !== null && typeof value === "object") {
    const entries = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
    const brackets = Array.isArray(value) ? ["[", "]"] : ["{", "}"];
    const details = wfe.el("details", { open: depth < 2 });
    details.append(wfe.el("summary", {}, ...label, `${brackets[0]} ${entries.length} ${Array.isArray(value) ? "item" : "key"}${entries.length === 1 ? "" : "s"} ${brackets[1]}`));
    for (const [k, v] of entries) details.append(jsonNode(v, Array.isArray(value) ? null : k, depth + 1));
    return details;
  }
  const kind = typeof value === "string" ? "str" : typeof value === "number" ? "n" : "b";
  return wfe.el("div", { class: "row" }, ...label, wfe.el("span", { class: kind, text: JSON.stringify(value) }));
}

function renderData(w) {
  const text = JSON.stringify(w.data);
  document.getElementById("data-type").textContent = w.data_type ? `(${w.data_type}${w.data_type_importable ? "" : ", shown as stored"})` : "";
  if (text === shownData) return;
  shownData = text;
  document.getElementById("data").replaceChildren(jsonNode(w.data, null, 0));
}

async function loadLogs(w) {
  if (!w.has_logs) return;
  const pre = document.getElementById("logs");
  for (;;) {
    const page = await wfe.get(`/api/workflows/${encodeURIComponent(workflowId)}/logs?after=${logAfter}`);
    for (const line of page.lines) {
      logAfter = line.seq;
      logCount += 1;
      const attempt = line.attempt > 1 ? ` (attempt ${line.attempt})` : "";
      const stream = line.stream === "stdout" ? "" : ` [${line.stream}]`;
      pre.append(wfe.el("span", { class: "step", text: `${line.step}${attempt}` }),
        wfe.el("span", { class: line.stream === "stderr" ? "err" : "meta", text: `${stream} | ` }),
        wfe.el("span", { class: line.stream === "stderr" ? "err" : "", text: line.line + "\n" }));
    }
    if (!page.more) break;
  }
  if (logCount) {
    document.getElementById("logs-card").hidden = false;
    document.getElementById("log-count").textContent = `(${logCount} line${logCount === 1 ? "" : "s"})`;
  }
}

let busy = null;
let again = false;

// One read at a time; a change noted meanwhile reads once more afterwards.
async function load() {
  if (busy) { again = true; return busy; }
  busy = (async () => {
    do { again = false; await loadOnce(); } while (again);
  })();
  try { await busy; } finally { busy = null; }
}

async function loadOnce() {
  try {
    const w = await wfe.get(`/api/workflows/${encodeURIComponent(workflowId)}`);
    current = w;
    wfe.message("");
    renderSummary(w); renderGantt(w); renderGraph(w); renderErrors(w); renderSubs(w); renderData(w);
    await loadLogs(w);
  } catch (error) {
    wfe.message(error.message);
  }
}

async function act(action) {
  if (action === "terminate" && !confirm(`Terminate workflow ${workflowId}?`)) return;
  try {
    await wfe.post(`/api/workflows/${encodeURIComponent(workflowId)}/${action}`);
    wfe.message(`Workflow ${action === "terminate" ? "terminated" : action + "ed"}.`, true);
  } catch (error) { wfe.message(error.message); }
  await load();
}

document.addEventListener("DOMContentLoaded", async () => {
  try { await wfe.loadSession(() => current && renderSummary(current)); } catch (error) { wfe.message(error.message); }
  for (const button of document.querySelectorAll("#actions button[data-action]")) {
    button.addEventListener("click", () => act(button.dataset.action));
  }
  const form = document.getElementById("publish");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let data = form.elements.data.value;
    if (data === "") data = null; else { try { data = JSON.parse(data); } catch (_) { /* text */ } }
    try {
      const answer = await wfe.post("/api/events", { name: form.elements.name.value, key: form.elements.key.value, data });
      wfe.message(`Event ${answer.event_id} published.`, true);
    } catch (error) { wfe.message(error.message); }
  });
  await load();
  wfe.live(`/api/workflows/${encodeURIComponent(workflowId)}/stream`, load);
});
