// Shared helpers of the dashboard's pages. Everything from the store is put into the
// page as text (textContent), never as markup.
"use strict";

const wfe = {
  session: null,

  el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = String(value);
      else if (name === "class") node.className = value;
      else if (name.startsWith("data-")) node.setAttribute(name, String(value));
      else node[name] = value;
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  },

  pill(status) {
    return wfe.el("span", { class: "pill s-" + status, text: status.toLowerCase().replace(/_/g, " "), "data-status": status });
  },

  when(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    const pad = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  },

  duration(seconds) {
    if (seconds === null || seconds === undefined) return "";
    if (seconds < 0.001) return "<1 ms";
    if (seconds < 1) return Math.round(seconds * 1000) + " ms";
    if (seconds < 60) return seconds.toFixed(seconds < 10 ? 2 : 1) + " s";
    const m = Math.floor(seconds / 60), s = Math.round(seconds % 60);
    if (m < 60) return `${m}m ${s}s`;
    const h = Math.floor(m / 60);
    if (h < 48) return `${h}h ${m % 60}m`;
    return `${Math.floor(h / 24)}d ${h % 24}h`;
  },

  async get(url) {
    const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
    const body = await response.json().catch(() => ({ error: response.statusText }));
    if (!response.ok) throw new Error(body.error || response.statusText);
    return body;
  },

  async post(url, body) {
    const headers = { "content-type": "application/json" };
    if (wfe.session && wfe.session.csrf_token) headers["x-csrf-token"] = wfe.session.csrf_token;
    const response = await fetch(url, {
      method: "POST", credentials: "same-origin", headers, body: JSON.stringify(body || {}),
    });
    const answer = await response.json().catch(() => ({ error: response.statusText }));
    if (!response.ok) throw new Error(answer.error || response.statusText);
    return answer;
  },

  message(text, info) {
    const box = document.getElementById("message");
    if (!text) { box.hidden = true; return; }
    box.textContent = text;
    box.className = info ? "message info" : "message";
    box.hidden = false;
  },

  // Subscribe to a server-sent-events stream; `onChange` runs on each "change", and
  // each time the stream (re)connects: what changed before the server took its first
  // look (or while disconnected) would otherwise never be reported.
  live(url, onChange) {
    const badge = document.getElementById("live");
    const source = new EventSource(url);
    source.addEventListener("open", () => { badge.classList.add("on"); onChange(); });
    source.addEventListener("error", () => badge.classList.remove("on"));
    source.addEventListener("change", onChange);
    return source;
  },

  async loadSession(onChange) {
    wfe.session = await wfe.get("/api/session");
    document.getElementById("store").textContent = wfe.session.store || "";
    wfe.renderAuth(onChange);
    return wfe.session;
  },

  renderAuth(onChange) {
    const area = document.getElementById("auth");
    area.replaceChildren();
    const s = wfe.session;
    if (!s.allow_actions) {
      area.append(wfe.el("span", { class: "live", text: "read-only" }));
      return;
    }
    if (s.logged_in) {
      const out = wfe.el("button", { type: "button", class: "quiet", text: "Log out", id: "logout" });
      out.addEventListener("click", async () => {
        await wfe.post("/api/logout").catch(() => null);
        s.logged_in = false; s.csrf_token = null;
        wfe.renderAuth(onChange); if (onChange) onChange();
      });
      area.append(out);
      return;
    }
    const form = wfe.el("form", { id: "login" },
      wfe.el("input", { type: "password", name: "token", placeholder: "access token", autocomplete: "current-password", "aria-label": "access token" }),
      wfe.el("button", { type: "submit", text: "Log in to act" }));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const answer = await wfe.post("/api/login", { token: form.token.value });
        s.logged_in = true; s.csrf_token = answer.csrf_token;
        wfe.message("");
        wfe.renderAuth(onChange); if (onChange) onChange();
      } catch (error) { wfe.message(error.message); }
    });
    area.append(form);
  },
};
