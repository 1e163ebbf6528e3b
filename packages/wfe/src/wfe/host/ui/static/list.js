// The list page: a page of workflows straight from the store, or search results.
"use strict";

const FIELDS = ["q", "status", "definition", "reference", "since", "until", "data", "take"];
let skip = 0;
let lastPage = null;
let loading = null;

function queryFromForm() {
  const form = document.getElementById("filters");
  const params = new URLSearchParams();
  for (const name of FIELDS) {
    const value = form.elements[name].value.trim();
    if (value && !(name === "take" && value === "50")) params.set(name, value);
  }
  if (skip) params.set("skip", String(skip));
  return params;
}

function formFromQuery() {
  const params = new URLSearchParams(location.search);
  const form = document.getElementById("filters");
  for (const name of FIELDS) {
    if (params.has(name)) form.elements[name].value = params.get(name);
  }
  skip = Math.max(parseInt(params.get("skip") || "0", 10) || 0, 0);
}

function row(w) {
  const link = wfe.el("a", { href: "/workflows/" + encodeURIComponent(w.id), text: w.id, class: "mono" });
  const ended = w.complete_time ? wfe.when(w.complete_time) : "";
  return wfe.el("tr", { "data-id": w.id },
    wfe.el("td", {}, wfe.pill(w.status)),
    wfe.el("td", {}, link),
    wfe.el("td", { title: w.description || "" }, w.definition_id, wfe.el("span", { class: "muted", text: " v" + w.version })),
    wfe.el("td", { text: w.reference || "", title: w.reference || "" }),
    wfe.el("td", { text: wfe.when(w.create_time) }),
    wfe.el("td", { text: ended }),
    w.duration !== null
      ? wfe.el("td", { class: "num", text: wfe.duration(w.duration) })
      : wfe.el("td", { class: "num muted", text: w.status === "RUNNABLE" ? wfe.duration((Date.now() - Date.parse(w.create_time)) / 1000) : "", title: "so far" }),
  );
}

function render(page) {
  lastPage = page;
  const body = document.getElementById("rows");
  if (!page.items.length) {
    body.replaceChildren(wfe.el("tr", {}, wfe.el("td", { colSpan: 7, class: "empty", text: page.skip ? "No more workflows." : "No workflows match." })));
  } else {
    body.replaceChildren(...page.items.map(row));
  }
  const first = page.items.length ? page.skip + 1 : page.skip;
  const last = page.skip + page.items.length;
  const total = page.total === null ? "" : ` of ${page.total.toLocaleString()}`;
  document.getElementById("range").textContent = `${first.toLocaleString()}–${last.toLocaleString()}${total}`;
  document.getElementById("prev").disabled = page.skip === 0;
  document.getElementById("next").disabled = !page.more;
}

async function load() {
  const params = queryFromForm();
  const shown = params.toString();
  history.replaceState(null, "", shown ? "/?" + shown : "/");
  const mine = (loading = fetchPage(params));
  try {
    const page = await mine;
    if (mine === loading) { render(page); wfe.message(""); }
  } catch (error) {
    if (mine === loading) wfe.message(error.message);
  }
}

function fetchPage(params) {
  return wfe.get("/api/workflows?" + params.toString());
}

document.addEventListener("DOMContentLoaded", async () => {
  formFromQuery();
  const form = document.getElementById("filters");
  form.addEventListener("submit", (event) => { event.preventDefault(); skip = 0; load(); });
  form.elements.status.addEventListener("change", () => { skip = 0; load(); });
  form.elements.take.addEventListener("change", () => { skip = 0; load(); });
  document.getElementById("clear").addEventListener("click", () => { form.reset(); skip = 0; load(); });
  document.getElementById("prev").addEventListener("click", () => {
    const take = lastPage ? lastPage.take : 50;
    skip = Math.max(skip - take, 0); load();
  });
  document.getElementById("next").addEventListener("click", () => {
    skip += lastPage ? lastPage.take : 50; load();
  });
  try { await wfe.loadSession(null); } catch (error) { wfe.message(error.message); }
  await load();
  // The first page follows the store live; older pages stay as they are while read.
  wfe.live("/api/stream", () => { if (skip === 0) load(); });
});
