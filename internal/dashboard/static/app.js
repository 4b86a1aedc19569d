// ironpool dashboard: reads the /v1 API with the viewer's token and renders
// it as text (never as HTML). Refreshes every few seconds.
"use strict";

const REFRESH_MS = 5000;
const $ = (sel) => document.querySelector(sel);
let timer = null;

function token() { return sessionStorage.getItem("ironpool-token") || ""; }

// api fetches a /v1 path; a refusal becomes an Error carrying the HTTP
// status and the problem document's detail.
async function api(path) {
  const resp = await fetch(path, { headers: { "Authorization": "Bearer " + token(), "Accept": "application/json" } });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    const err = new Error(body.detail || resp.statusText || ("HTTP " + resp.status));
    err.status = resp.status;
    throw err;
  }
  return body;
}

// el builds an element whose content is text: pool data never becomes markup.
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function fill(table, rows, empty) {
  const body = $(table + " tbody");
  body.replaceChildren();
  if (rows.length === 0) {
    const tr = el("tr");
    const td = el("td", empty, "empty");
    td.colSpan = $(table + " thead tr").children.length;
    tr.append(td);
    body.append(tr);
    return;
  }
  for (const cells of rows) {
    const tr = el("tr");
    for (const c of cells) tr.append(c instanceof Node ? c : el("td", c));
    body.append(tr);
  }
}

function num(n) { return el("td", n, "num"); }

function relative(iso) {
  if (!iso || iso.startsWith("0001-")) return "";
  const s = Math.round((new Date(iso) - Date.now()) / 1000);
  const a = Math.abs(s);
  const txt = a < 90 ? a + "s" : a < 5400 ? Math.round(a / 60) + "m" : a < 172800 ? Math.round(a / 3600) + "h" : Math.round(a / 86400) + "d";
  return s >= 0 ? "in " + txt : txt + " ago";
}

function items(a) {
  return (a.items || []).map((it) => (it.flavor || "custom") + "×" + it.count).join(", ");
}

function nodesOf(a) {
  return (a.items || []).flatMap((it) => it.nodes || []).join(" ");
}

function card(value, label) {
  const d = el("div", null, "card");
  d.append(el("b", value), el("span", label));
  return d;
}

function render(status, allocs, attention) {
  const byState = {};
  let total = 0;
  for (const c of status.nodes || []) {
    byState[c.state] = (byState[c.state] || 0) + c.count;
    total += c.count;
  }
  $("#summary").replaceChildren(
    card(total, "nodes"),
    card(byState.available || 0, "available"),
    card((byState.allocated || 0) + (byState.deploying || 0) + (byState.deployed || 0), "allocated"),
    card(byState.cleaning || 0, "cleaning"),
    card((byState.maintenance || 0) + (byState.error || 0), "maintenance or error"),
    card(allocs.filter((a) => a.state === "active").length, "live allocations"),
    card(status.queued || 0, "queued requests"),
  );

  fill("#capacity", (status.capacity || []).map((c) => {
    const bar = el("td");
    const outer = el("div", null, "bar");
    const inner = el("div");
    inner.style.width = (c.total ? Math.round(100 * c.free / c.total) : 0) + "%";
    outer.append(inner);
    bar.append(outer);
    return [c.flavor, c.pool || "any", num(c.free), num(c.total), bar];
  }), "no flavors defined");

  fill("#nodes", (status.nodes || []).map((c) => [c.pool, el("td", c.state, "state-" + c.state), num(c.count)]), "no nodes");

  fill("#allocations", allocs.map((a) => [
    a.id.slice(0, 8), a.owner, el("td", a.state, "state-" + a.state), items(a), nodesOf(a),
    a.state === "queued" ? "waits " + relative(a.wait_until) : relative(a.expires_at),
  ]), "no live allocations");

  fill("#attention", attention.map((n) => [n.name, n.pool, el("td", n.state, "state-" + n.state),
    n.maintenance_reason || n.last_error || ""]), "nothing needs attention");
}

function renderEvents(events, refusal) {
  const note = $("#events-note");
  note.hidden = !refusal;
  note.textContent = refusal ? "The audit log needs an operator or admin token (" + refusal + ")." : "";
  fill("#events", events.slice().reverse().map((e) => [
    new Date(e.time).toLocaleTimeString(), e.actor + (e.role ? " (" + e.role + ")" : ""), e.action, e.subject, e.summary,
  ]), refusal ? "not shown" : "no events yet");
}

async function refresh() {
  clearTimeout(timer);
  try {
    const [status, allocs, maint, errs] = await Promise.all([
      api("/v1/status"),
      api("/v1/allocations?live=true&limit=500"),
      api("/v1/nodes?state=maintenance"),
      api("/v1/nodes?state=error"),
    ]);
    render(status, allocs.allocations || [], [...(maint.nodes || []), ...(errs.nodes || [])]);
    try {
      renderEvents((await api("/v1/events?tail=25")).events || [], null);
    } catch (e) {
      if (e.status !== 403) throw e;
      renderEvents([], e.message);
    }
    show(true);
    $("#refreshed").textContent = "Refreshed " + new Date().toLocaleTimeString() + "; every " + REFRESH_MS / 1000 + " s.";
  } catch (e) {
    if (e.status === 401) {
      sessionStorage.removeItem("ironpool-token");
      show(false, "Token refused: " + e.message);
      return;
    }
    $("#refreshed").textContent = "Refresh failed (" + e.message + "); retrying.";
  }
  timer = setTimeout(refresh, REFRESH_MS);
}

function show(board, error) {
  $("#board").hidden = !board;
  $("#login").hidden = board;
  $("#signout").hidden = !board;
  $("#whoami").textContent = board ? "signed in with token " + token().slice(0, 8) + "…" : "";
  $("#error").textContent = error || "";
}

document.addEventListener("DOMContentLoaded", () => {
  $("#login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem("ironpool-token", $("#token").value.trim());
    $("#token").value = "";
    refresh();
  });
  $("#signout").addEventListener("click", () => {
    clearTimeout(timer);
    sessionStorage.removeItem("ironpool-token");
    show(false);
  });
  if (token()) refresh(); else show(false);
});
