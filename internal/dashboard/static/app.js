// ironpool dashboard: the operator's console. It reads and changes the pool
// only through the /v1 API with the viewer's token, and renders every value
// as text (textContent, never HTML). Pages are addressed by the URL's hash
// (#/nodes, #/node/NAME, #/allocations, #/allocation/ID, #/usage), so links,
// the back button and reloads work without any server-side page.
"use strict";

const REFRESH_MS = 5000;
const HISTORY_PAGE = 25;
const $ = (sel, root) => (root || document).querySelector(sel);
let timer = null;
let me = null; // GET /v1/whoami: role, owners, the operations the role may run
let route = null; // the route the view was built for
let historyCursor = []; // node page: the "before" cursors of the pages seen

function token() { return sessionStorage.getItem("ironpool-token") || ""; }

// api calls a /v1 path; a refusal becomes an Error carrying the HTTP status
// and the problem document's detail, which is what the viewer is shown.
async function api(path, method, body) {
  const opts = { method: method || "GET", headers: { "Authorization": "Bearer " + token(), "Accept": "application/json" } };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const resp = await fetch(path, opts);
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    const err = new Error(data.detail || data.title || resp.statusText || ("HTTP " + resp.status));
    err.status = resp.status;
    throw err;
  }
  return data;
}

// el builds an element whose content is text: pool data never becomes markup.
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function link(href, text) {
  const a = el("a", text);
  a.href = href;
  return a;
}

const nodeHref = (name) => "#/node/" + encodeURIComponent(name);
const allocHref = (id) => "#/allocation/" + encodeURIComponent(id);

function td(content, cls) {
  if (content instanceof Node) {
    const c = el("td", null, cls);
    c.append(content);
    return c;
  }
  return el("td", content, cls);
}

const num = (n) => td(n, "num");
const long = (s) => td(s, "long");
const stateCell = (s) => td(s, "state-" + s);

// table builds a scrollable table; a header is a label or {label, num,
// sort}; a row is a list of cells (text, Node or <td>).
function table(id, headers, rows, empty, sorter) {
  const wrap = el("div", null, "scroll");
  const t = el("table");
  t.id = id;
  const tr = el("tr");
  for (const h of headers) {
    const spec = typeof h === "string" ? { label: h } : h;
    const th = el("th", null, spec.num ? "num" : "");
    th.scope = "col";
    if (spec.sort && sorter) {
      const b = el("button", spec.label);
      b.type = "button";
      b.dataset.sort = spec.sort;
      const active = sorter.key === spec.sort;
      th.setAttribute("aria-sort", active ? (sorter.dir === "desc" ? "descending" : "ascending") : "none");
      if (active) b.textContent += sorter.dir === "desc" ? " ▼" : " ▲";
      b.addEventListener("click", () => sorter.onSort(spec.sort));
      th.append(b);
    } else {
      th.textContent = spec.label;
    }
    tr.append(th);
  }
  const head = el("thead");
  head.append(tr);
  const body = el("tbody");
  if (rows.length === 0) {
    const r = el("tr");
    const c = el("td", empty, "empty");
    c.colSpan = headers.length;
    r.append(c);
    body.append(r);
  }
  for (const cells of rows) {
    const r = el("tr");
    for (const c of cells) r.append(c instanceof HTMLTableCellElement ? c : td(c));
    body.append(r);
  }
  t.append(head, body);
  wrap.append(t);
  return wrap;
}

function section(title, ...children) {
  const s = el("section");
  const h = el("h2", title);
  s.append(h, ...children);
  return s;
}

function kv(pairs) {
  const dl = el("dl", null, "kv");
  for (const [k, v] of pairs) {
    if (v === undefined || v === null || v === "") continue;
    dl.append(el("dt", k), v instanceof Node ? (() => { const d = el("dd"); d.append(v); return d; })() : el("dd", v));
  }
  return dl;
}

const zero = (iso) => !iso || iso.startsWith("0001-");

// when shows a date and time in the viewer's zone, e.g. 2026-12-01 10:17:15.
function when(iso) {
  if (zero(iso)) return "";
  const d = new Date(iso);
  const p = (n) => String(n).padStart(2, "0");
  return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + " " + p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
}

function relative(iso) {
  if (zero(iso)) return "";
  const s = Math.round((new Date(iso) - Date.now()) / 1000);
  const a = Math.abs(s);
  const txt = a < 90 ? a + "s" : a < 5400 ? Math.round(a / 60) + "m" : a < 172800 ? Math.round(a / 3600) + "h" : Math.round(a / 86400) + "d";
  return s >= 0 ? "in " + txt : txt + " ago";
}

function timeCell(iso, rel) {
  const c = el("td", when(iso), "time");
  if (rel && !zero(iso)) c.append(el("span", " (" + relative(iso) + ")", "hint"));
  if (!zero(iso)) c.title = iso;
  return c;
}

const items = (a) => (a.items || []).map((it) => (it.flavor || "custom") + "×" + it.count).join(", ");
const nodeNames = (a) => (a.items || []).flatMap((it) => it.nodes || []);

function nodeLinks(names) {
  const span = el("span");
  names.forEach((n, i) => {
    if (i) span.append(" ");
    span.append(link(nodeHref(n), n));
  });
  return span;
}

function card(value, label) {
  const d = el("div", null, "card");
  d.append(el("b", value), el("span", label));
  return d;
}

function button(label, onClick, cls) {
  const b = el("button", label, cls);
  b.type = "button";
  b.addEventListener("click", onClick);
  return b;
}

const may = (op) => !!me && (me.may || []).includes(op);
const staff = () => may("events.read");
const actsFor = (owner) => !!me && (me.role === "admin" || (me.role === "user" && (me.owners || []).includes(owner)));

// confirmAction asks before changing anything. The change runs through the
// API with the viewer's token; a refusal keeps the dialog open showing the
// server's problem text, so the viewer sees exactly why.
function confirmAction(opts) {
  const dlg = $("#confirm");
  $("#confirm-title").textContent = opts.title;
  $("#confirm-text").textContent = opts.text;
  $("#confirm-error").textContent = "";
  $("#confirm-field").hidden = !opts.input;
  const input = $("#confirm-input");
  input.value = opts.input ? (opts.input.value || "") : "";
  input.required = !!(opts.input && opts.input.required);
  $("#confirm-label").textContent = opts.input ? opts.input.label : "";
  $("#confirm-ok").textContent = opts.ok || "Confirm";
  $("#confirm-ok").className = opts.danger ? "danger" : "primary";
  dlg.onsubmit = async (ev) => {
    ev.preventDefault();
    $("#confirm-ok").disabled = true;
    try {
      await opts.run(input.value.trim());
      dlg.close();
      $("#notice").textContent = opts.done || (opts.title + ": done.");
      refresh();
    } catch (e) {
      $("#confirm-error").textContent = e.message;
    } finally {
      $("#confirm-ok").disabled = false;
    }
  };
  dlg.showModal();
  (opts.input ? input : $("#confirm-ok")).focus();
}

// ---- routing ----

function parseRoute() {
  const h = location.hash.replace(/^#\/?/, "");
  const [path, query] = h.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { page: parts[0] || "overview", arg: parts[1] || "", params: new URLSearchParams(query || ""), key: h };
}

function setParams(page, params) {
  const q = params.toString();
  history.replaceState(null, "", "#/" + page + (q ? "?" + q : ""));
}

const views = { overview, nodes, node, allocations, allocation, reservations, usage };

// refresh renders the current route. Only one runs at a time: a refresh
// asked for meanwhile (a filter typed, a link followed) runs when the
// current one ends, so an older, slower render never overwrites a newer one.
let running = false, again = false;
async function refresh() {
  if (running) {
    again = true;
    return;
  }
  running = true;
  try {
    do {
      again = false;
      await render();
    } while (again);
  } finally {
    running = false;
  }
}

async function render() {
  clearTimeout(timer);
  const r = parseRoute();
  const view = views[r.page] || notFound;
  const first = !route || route.page !== r.page || route.arg !== r.arg;
  try {
    if (!me) me = await api("/v1/whoami");
    if (first) {
      route = r;
      historyCursor = [];
      $("#view").replaceChildren();
      $("#notice").textContent = "";
    }
    route = r;
    await view(r, $("#view"), first);
    // Tests wait on this count to know the page shows the current route.
    document.body.dataset.renders = String(+(document.body.dataset.renders || 0) + 1);
    document.body.dataset.route = r.key;
    show(true);
    markNav(r.page);
    if (first) $("#view").focus({ preventScroll: true });
    $("#refreshed").textContent = "Refreshed " + when(new Date().toISOString()) + "; every " + REFRESH_MS / 1000 + " s.";
  } catch (e) {
    if (e.status === 401) {
      signOut("Token refused: " + e.message);
      return;
    }
    $("#refreshed").textContent = "Refresh failed (" + e.message + "); retrying.";
  }
  timer = setTimeout(refresh, REFRESH_MS);
}

function markNav(page) {
  const map = { node: "nodes", allocation: "allocations" };
  for (const a of document.querySelectorAll("#nav a")) {
    const target = a.getAttribute("href").replace(/^#\/?/, "") || "overview";
    if (target === (map[page] || page)) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
}

// slot returns the view's child with this id, creating it (in order) on
// the first render; refreshes replace a slot's content, never the page's
// inputs, so typing in a filter is not interrupted.
function slot(root, id, cls) {
  let s = root.querySelector("#" + id);
  if (!s) {
    s = el("section", null, cls || "");
    s.id = id;
    root.append(s);
  }
  return s;
}

function fillSlot(root, id, title, cls, ...children) {
  const s = slot(root, id, cls);
  s.replaceChildren(el("h2", title), ...children);
  return s;
}

async function notFound(r, root) {
  fillSlot(root, "missing", "Not found", "wide", el("p", "There is no page " + r.key + "."), link("#/", "Back to the overview"));
}

// ---- overview ----

async function overview(r, root) {
  const [status, allocs, maint, errs] = await Promise.all([
    api("/v1/status"), api("/v1/allocations?live=true&limit=500"),
    api("/v1/nodes?state=maintenance"), api("/v1/nodes?state=error"),
  ]);
  const live = allocs.allocations || [];
  const byState = {};
  let total = 0;
  for (const c of status.nodes || []) {
    byState[c.state] = (byState[c.state] || 0) + c.count;
    total += c.count;
  }
  let cards = root.querySelector("#summary");
  if (!cards) {
    cards = el("div", null, "cards");
    cards.id = "summary";
    cards.setAttribute("role", "group");
    cards.setAttribute("aria-label", "summary");
    root.append(cards);
  }
  cards.replaceChildren(
    card(total, "nodes"), card(byState.available || 0, "available"),
    card((byState.allocated || 0) + (byState.deploying || 0) + (byState.deployed || 0), "allocated"),
    card(byState.cleaning || 0, "cleaning"), card((byState.maintenance || 0) + (byState.error || 0), "maintenance or error"),
    card(live.filter((a) => a.state === "active").length, "live allocations"), card(status.queued || 0, "queued requests"));

  fillSlot(root, "capacity-card", "Capacity", "", table("capacity", ["flavor", "pool", { label: "free", num: true }, { label: "total", num: true }, "free share"],
    (status.capacity || []).map((c) => {
      const outer = el("div", null, "bar");
      outer.setAttribute("role", "img");
      outer.setAttribute("aria-label", c.free + " of " + c.total + " free");
      const inner = el("div");
      inner.style.width = (c.total ? Math.round(100 * c.free / c.total) : 0) + "%";
      outer.append(inner);
      return [c.flavor, c.pool || "any", num(c.free), num(c.total), td(outer)];
    }), "no flavors defined"));

  fillSlot(root, "states-card", "Nodes by pool and state", "", table("nodes-by-state", ["pool", "state", { label: "nodes", num: true }],
    (status.nodes || []).map((c) => [link("#/nodes?pool=" + encodeURIComponent(c.pool) + "&state=" + encodeURIComponent(c.state), c.pool),
      stateCell(c.state), num(c.count)]), "no nodes"));

  fillSlot(root, "allocations-card", "Live allocations", "", table("allocations", ["id", "owner", "state", "items", "nodes", "expires"],
    live.map((a) => [link(allocHref(a.id), a.id.slice(0, 8)), a.owner, stateCell(a.state), items(a), td(nodeLinks(nodeNames(a))),
      a.state === "queued" ? timeCell(a.wait_until, true) : timeCell(a.expires_at, true)]), "no live allocations"));

  const attention = [...(maint.nodes || []), ...(errs.nodes || [])];
  fillSlot(root, "attention-card", "Needs attention", "", table("attention", ["node", "pool", "state", "reason"],
    attention.map((n) => [link(nodeHref(n.name), n.name), n.pool, stateCell(n.state), long(n.maintenance_reason || n.last_error || "")]),
    "nothing needs attention"));

  let events = [], refusal = null;
  try {
    events = (await api("/v1/events?tail=15")).events || [];
  } catch (e) {
    if (e.status !== 403) throw e;
    refusal = e.message;
  }
  const note = el("p", refusal ? "The audit log needs an operator or admin token (" + refusal + ")." : "", "hint");
  note.id = "events-note";
  note.hidden = !refusal;
  fillSlot(root, "events-card", "Recent events", "wide", note, eventTable("events", events.slice().reverse(), refusal ? "not shown" : "no events yet"));
}

function subjectLink(subject) {
  const [kind, name] = subject.split(/\/(.*)/s);
  if (kind === "node" && name) return link(nodeHref(name), subject);
  if (kind === "allocation" && name) return link(allocHref(name), subject);
  return subject;
}

function eventTable(id, events, empty) {
  return table(id, ["time", "actor", "action", "subject", "summary"], events.map((e) => [
    timeCell(e.time), e.actor + (e.role ? " (" + e.role + ")" : ""), e.action, td(subjectLink(e.subject), "long"), long(e.summary),
  ]), empty);
}

// ---- node list ----

const NODE_SORTS = {
  name: (n) => n.name, pool: (n) => n.pool, state: (n) => n.state, cpus: (n) => n.cpus,
  memory: (n) => n.memory_mb, disk: (n) => n.local_gb, owner: (n) => n.owner || "",
};

function matchesText(n, q) {
  if (!q) return true;
  const hay = [n.name, n.uuid, n.pool, n.state, n.owner, n.cpu_arch, n.resource_class, n.maintenance_reason, n.last_error,
    n.bmc && n.bmc.address, ...(n.macs || []), ...(n.traits || []), ...Object.values(n.fields || {}), ...Object.keys(n.fields || {})];
  return hay.some((v) => v && String(v).toLowerCase().includes(q));
}

async function nodes(r, root, first) {
  const p = r.params;
  const flavor = p.get("flavor") || "";
  const [list, flavors, fitting] = await Promise.all([
    api("/v1/nodes"), api("/v1/flavors"),
    flavor ? api("/v1/nodes?flavor=" + encodeURIComponent(flavor)) : Promise.resolve(null),
  ]);
  const all = list.nodes || [];
  const fit = fitting ? new Set((fitting.nodes || []).map((n) => n.name)) : null;
  if (first) root.append(nodeFilters(p, all, flavors.flavors || []));
  const q = (p.get("q") || "").trim().toLowerCase();
  const want = { pool: p.get("pool") || "", state: p.get("state") || "", owner: (p.get("owner") || "").trim(), trait: p.get("trait") || "" };
  const shown = all.filter((n) => matchesText(n, q) && (!want.pool || n.pool === want.pool) && (!want.state || n.state === want.state) &&
    (!want.owner || (n.owner || "") === want.owner) && (!want.trait || (n.traits || []).includes(want.trait)) && (!fit || fit.has(n.name)));
  const key = NODE_SORTS[p.get("sort")] ? p.get("sort") : "name";
  const dir = p.get("dir") === "desc" ? "desc" : "asc";
  const get = NODE_SORTS[key];
  shown.sort((a, b) => {
    const x = get(a), y = get(b);
    const c = typeof x === "number" ? x - y : String(x).localeCompare(String(y));
    return (dir === "desc" ? -c : c) || a.name.localeCompare(b.name);
  });
  const counts = {};
  for (const n of shown) counts[n.state] = (counts[n.state] || 0) + 1;
  const summary = el("p", "Showing " + shown.length + " of " + all.length + " nodes" +
    (shown.length ? ": " + Object.entries(counts).sort().map(([s, c]) => c + " " + s).join(", ") : "") + ".");
  summary.id = "node-count";
  summary.setAttribute("role", "status");
  const sorter = {
    key, dir, onSort: (k) => {
      p.set("dir", k === key && dir === "asc" ? "desc" : "asc");
      p.set("sort", k);
      setParams("nodes", p);
      refresh();
    },
  };
  fillSlot(root, "node-list", "Nodes", "wide", summary, table("node-table", [
    { label: "name", sort: "name" }, { label: "pool", sort: "pool" }, { label: "state", sort: "state" },
    { label: "cpus", sort: "cpus", num: true }, { label: "memory MiB", sort: "memory", num: true }, { label: "disk GB", sort: "disk", num: true },
    "arch", "traits", { label: "owner", sort: "owner" }, "note",
  ], shown.map((n) => [link(nodeHref(n.name), n.name), n.pool, stateCell(n.state), num(n.cpus), num(n.memory_mb), num(n.local_gb),
    n.cpu_arch, (n.traits || []).join(" "), n.owner ? td(n.allocation_id ? link(allocHref(n.allocation_id), n.owner) : n.owner) : "",
    long(n.maintenance_reason || n.last_error || "")]), all.length ? "no node matches these filters" : "no nodes", sorter));
}

function nodeFilters(p, all, flavors) {
  const form = el("form", null, "filters");
  form.id = "node-filters";
  form.setAttribute("role", "search");
  form.setAttribute("aria-label", "filter nodes");
  const uniq = (xs) => [...new Set(xs.filter(Boolean))].sort();
  const field = (name, label, control) => {
    const l = el("label", label);
    control.name = name;
    control.id = "f-" + name;
    control.value = p.get(name) || "";
    l.append(control);
    form.append(l);
    return control;
  };
  const select = (name, label, options) => {
    const s = el("select");
    s.append(new Option("any", ""));
    for (const o of options) s.append(new Option(o, o));
    s.value = p.get(name) || "";
    return field(name, label, s);
  };
  const search = el("input");
  search.type = "search";
  search.placeholder = "name, MAC, BMC, field…";
  field("q", "search", search);
  select("pool", "pool", uniq(all.map((n) => n.pool)));
  select("state", "state", ["available", "allocated", "cleaning", "maintenance", "error", "enrolling", "deploying", "deployed"]);
  select("flavor", "fits flavor", flavors.map((f) => f.name));
  const owner = el("input");
  owner.type = "text";
  field("owner", "owner", owner);
  select("trait", "trait", uniq(all.flatMap((n) => n.traits || [])));
  const clear = button("Clear", () => {
    for (const c of form.querySelectorAll("input, select")) c.value = "";
    apply();
  });
  form.append(clear);
  const apply = () => {
    const q = new URLSearchParams();
    for (const c of form.querySelectorAll("input, select")) if (c.value) q.set(c.name, c.value);
    if (p.get("sort")) q.set("sort", p.get("sort"));
    if (p.get("dir")) q.set("dir", p.get("dir"));
    setParams("nodes", q);
    refresh();
  };
  form.addEventListener("input", apply);
  form.addEventListener("submit", (ev) => { ev.preventDefault(); apply(); });
  const wrap = el("section", null, "wide");
  wrap.id = "filters-card";
  wrap.append(el("h2", "Find nodes"), form);
  return wrap;
}

// ---- node page ----

async function node(r, root, first) {
  const n = await api("/v1/nodes/" + encodeURIComponent(r.arg));
  const head = fillSlot(root, "node-summary", "Node " + n.name, "wide", kv([
    ["state", n.state], ["pool", n.pool], ["uuid", n.uuid],
    ["allocation", n.allocation_id ? link(allocHref(n.allocation_id), n.allocation_id) : ""], ["owner", n.owner],
    ["maintenance reason", n.maintenance_reason], ["last error", n.last_error], ["pending", n.pending],
    ["last allocated", when(n.last_allocated_at)], ["created", when(n.created_at)], ["updated", when(n.updated_at)],
  ]));
  head.append(nodeActions(n));
  fillSlot(root, "node-hardware", "Hardware", "", kv([
    ["cpus", n.cpus], ["memory", n.memory_mb + " MiB"], ["disk", n.local_gb + " GB"], ["arch", n.cpu_arch],
    ["resource class", n.resource_class], ["traits", (n.traits || []).join(" ") || "none"], ["MACs", (n.macs || []).join(" ") || "none"],
    ...Object.entries(n.fields || {}).sort().map(([k, v]) => ["fields." + k, v]),
  ]));
  // The BMC password is never shown here, whatever the API returned.
  fillSlot(root, "node-bmc", "BMC and backend", "", kv([
    ["BMC address", n.bmc && n.bmc.address], ["BMC username", n.bmc && n.bmc.username],
    ["managed by", n.managed_by || "ironpool"], ["Ironic node", n.ironic_uuid], ["Ironic endpoint", n.ironic_endpoint],
    ["provision state", n.provision_state], ["power state", n.power_state],
    ["health", n.health ? (n.health.state || n.health.status || JSON.stringify(n.health)) : ""],
  ]));
  if (!staff()) {
    fillSlot(root, "node-history", "History", "wide", el("p", "The node's history comes from the audit log, which needs an operator or admin token.", "hint"));
    return;
  }
  const before = historyCursor.length ? historyCursor[historyCursor.length - 1] : 0;
  const h = await api("/v1/nodes/" + encodeURIComponent(n.name) + "/history?limit=" + HISTORY_PAGE + (before ? "&before=" + before : ""));
  fillSlot(root, "node-tenancies", "Allocations that held it", "wide", table("tenancy-table", ["allocation", "owner", "state", "from", "to"],
    (h.tenancies || []).map((t) => [link(allocHref(t.allocation_id), t.allocation_id.slice(0, 8)), t.owner, stateCell(t.state),
      timeCell(t.from), zero(t.to) ? td("still held", "time") : timeCell(t.to)]), "never allocated"));
  const pager = el("div", null, "pager");
  const newer = button("Newer", () => { historyCursor.pop(); refresh(); });
  newer.disabled = historyCursor.length === 0;
  const older = button("Older", () => { historyCursor.push(h.next_before); refresh(); });
  older.disabled = !h.next_before;
  pager.append(newer, older, el("span", "page " + (historyCursor.length + 1) + ", newest first", "hint"));
  fillSlot(root, "node-history", "History", "wide", eventTable("history-table", h.events || [], "no events"), pager);
}

function nodeActions(n) {
  const box = el("div", null, "actions");
  box.id = "node-actions";
  box.setAttribute("role", "group");
  box.setAttribute("aria-label", "node actions");
  const path = "/v1/nodes/" + encodeURIComponent(n.name);
  if (may("node.maintenance")) {
    if (n.state !== "maintenance") {
      box.append(button("Maintenance on…", () => confirmAction({
        title: "Put " + n.name + " into maintenance", text: "The node will not be handed out until it is taken out of maintenance.",
        input: { label: "reason", required: true }, ok: "Maintenance on",
        run: (reason) => api(path + "/maintenance", "PUT", { reason }),
      })));
    }
    if (n.state === "maintenance" || n.state === "error") {
      box.append(button("Maintenance off", () => confirmAction({
        title: "Return " + n.name + " to service", text: "The node becomes available for allocation again.", ok: "Return to service",
        run: () => api(path + "/maintenance", "DELETE"),
      })));
    }
  }
  if (may("node.clean") && n.state === "error") {
    box.append(button("Clean again", () => confirmAction({
      title: "Clean " + n.name + " again", text: "The node's cleaning failed (" + (n.last_error || "no reason") + "). Run the clean again?",
      ok: "Clean again", run: () => api(path + "/clean", "POST"),
    })));
  }
  // A user may power only the nodes its owners hold; staff, any node.
  if (may("node.power") && (staff() || actsFor(n.owner))) {
    for (const [action, label] of [["on", "Power on"], ["off", "Power off"], ["reboot", "Reboot"]]) {
      box.append(button(label, () => confirmAction({
        title: label + " " + n.name, text: "Sends power " + action + " to the node's BMC through the backend.", ok: label, danger: action !== "on",
        run: () => api(path + "/power", "POST", { action }),
      })));
    }
  }
  if (!box.childElementCount) box.append(el("span", "No actions for this token's role.", "hint"));
  return box;
}

// ---- allocations ----

async function allocations(r, root, first) {
  const p = r.params;
  const state = p.get("state") || "live";
  const q = state === "live" ? "live=true" : state === "all" ? "" : "state=" + encodeURIComponent(state);
  const list = (await api("/v1/allocations?limit=500&" + q)).allocations || [];
  if (first) {
    const form = el("form", null, "filters");
    form.setAttribute("aria-label", "filter allocations");
    const l = el("label", "state");
    const s = el("select");
    s.id = "f-alloc-state";
    for (const o of ["live", "all", "active", "queued", "released", "expired", "failed"]) s.append(new Option(o, o));
    s.value = state;
    s.addEventListener("change", () => { setParams("allocations", new URLSearchParams(s.value === "live" ? "" : "state=" + s.value)); refresh(); });
    l.append(s);
    form.append(l);
    form.addEventListener("submit", (ev) => ev.preventDefault());
    const sec = el("section", null, "wide");
    sec.id = "alloc-filters";
    sec.append(el("h2", "Find allocations"), form);
    root.append(sec);
  }
  list.sort((a, b) => (b.created_at || "").localeCompare(a.created_at || ""));
  fillSlot(root, "alloc-list", "Allocations (" + list.length + ")", "wide", table("alloc-table",
    ["id", "owner", "state", "items", "nodes", "mode", "created", "expires"],
    list.map((a) => [link(allocHref(a.id), a.id.slice(0, 8)), a.owner, stateCell(a.state), items(a), td(nodeLinks(nodeNames(a))),
      a.mode, timeCell(a.created_at), a.state === "active" ? timeCell(a.expires_at, true) : td(a.state === "queued" ? "waits until " + when(a.wait_until) : "")]),
    "no allocations"));
  await queueSlot(root);
}

// queueSlot lists the queued requests in arrival order. Where the server
// says where a request stands (allocation.queue: position, reason,
// estimated_at) that is shown; otherwise the position is the arrival order.
async function queueSlot(root) {
  const queued = ((await api("/v1/allocations?state=queued&limit=500")).allocations || [])
    .sort((a, b) => (a.created_at || "").localeCompare(b.created_at || ""));
  const detailed = await Promise.all(queued.slice(0, 20).map((a) => api("/v1/allocations/" + encodeURIComponent(a.id)).catch(() => a)));
  const rows = queued.map((a, i) => {
    const d = detailed[i] || a;
    const qi = d.queue || {};
    return [num(qi.position || i + 1), link(allocHref(a.id), a.id.slice(0, 8)), a.owner, items(a), timeCell(a.created_at),
      timeCell(a.wait_until, true), qi.reason || "", zero(qi.estimated_at) ? td("", "time") : timeCell(qi.estimated_at, true)];
  });
  fillSlot(root, "queue", "Queue (" + queued.length + ")", "wide", el("p", "First come, first served: the head of the queue is never overtaken.", "hint"),
    table("queue-table", [{ label: "position", num: true }, "id", "owner", "items", "queued", "gives up", "reason", "estimate"], rows, "nothing queued"));
}

async function allocation(r, root) {
  const a = await api("/v1/allocations/" + encodeURIComponent(r.arg));
  const head = fillSlot(root, "alloc-summary", "Allocation " + a.id, "wide", kv([
    ["owner", a.owner], ["state", a.state], ["mode", a.mode], ["items", items(a)], ["created", when(a.created_at)],
    ["expires", a.state === "active" ? when(a.expires_at) + " (" + relative(a.expires_at) + ")" : ""],
    ["waits until", a.state === "queued" ? when(a.wait_until) : ""], ["ended", when(a.released_at)], ["last error", a.last_error],
    ["queue position", a.queue ? a.queue.position + " of " + a.queue.length : ""], ["why it waits", a.queue ? a.queue.reason : ""],
    ["estimate", a.queue && !zero(a.queue.estimated_at) ? when(a.queue.estimated_at) : ""],
    ...Object.entries(a.metadata || {}).sort().map(([k, v]) => ["metadata." + k, v]),
  ]));
  head.append(allocActions(a));
  // The handoff summary leaves the BMC password out even for the owner:
  // `ironpool allocation export` is where an owner reads it.
  fillSlot(root, "alloc-nodes", "Nodes", "wide", table("alloc-nodes-table", ["item", "node", "BMC address", "BMC username", "MACs", "cpus", "memory MiB", "disk GB"],
    (a.items || []).flatMap((it, i) => (it.nodes || []).map((name) => {
      const n = (a.nodes || []).find((x) => x.name === name) || { name };
      return [(it.flavor || "custom") + " #" + (i + 1), link(nodeHref(name), name), n.bmc ? n.bmc.address : "", n.bmc ? n.bmc.username : "",
        (n.macs || []).join(" "), num(n.cpus ?? ""), num(n.memory_mb ?? ""), num(n.local_gb ?? "")];
    })), a.state === "queued" ? "no nodes yet: queued" : "no nodes"));
  if (!staff()) return;
  const ev = (await api("/v1/events?subject=" + encodeURIComponent("allocation/" + a.id))).events || [];
  fillSlot(root, "alloc-events", "Events", "wide", eventTable("alloc-events-table", ev.slice().reverse(), "no events"));
}

function allocActions(a) {
  const box = el("div", null, "actions");
  box.id = "alloc-actions";
  box.setAttribute("role", "group");
  box.setAttribute("aria-label", "allocation actions");
  const path = "/v1/allocations/" + encodeURIComponent(a.id);
  const live = a.state === "active" || a.state === "queued";
  if (live && may("allocation.release") && actsFor(a.owner)) {
    box.append(button("Release", () => confirmAction({
      title: "Release allocation " + a.id.slice(0, 8), text: "The nodes of " + a.owner + " go back to the pool and are cleaned.",
      ok: "Release", danger: true, run: () => api(path, "DELETE"),
    }), "danger"));
  }
  if (a.state === "active" && may("allocation.extend") && actsFor(a.owner)) {
    box.append(button("Extend…", () => confirmAction({
      title: "Extend allocation " + a.id.slice(0, 8), text: "The lease is renewed to now plus this long.",
      input: { label: "ttl (e.g. 2h, 1d)", value: "2h", required: true }, ok: "Extend",
      run: (ttl) => api(path + "/extend", "POST", { ttl }),
    })));
  }
  if (!box.childElementCount) box.append(el("span", live ? "No actions for this token on this allocation." : "This allocation has ended.", "hint"));
  return box;
}

// ---- usage ----

// reservations lists the bookings for future windows (soonest first) and,
// from the calendar, how many nodes of each flavor are free over the next
// week, so an operator sees what is promised before booking more.
async function reservations(r, root) {
  const all = r.params.get("state") === "all";
  const list = (await api("/v1/reservations?limit=500" + (all ? "" : "&live=true"))).reservations || [];
  fillSlot(root, "res-list", "Reservations (" + list.length + ")", "wide", table("res-table",
    ["id", "owner", "state", "items", "nodes", "start", "end", "allocation", "last error"],
    list.map((x) => [x.id.slice(0, 8), x.owner, stateCell(x.state), items(x),
      td(nodeLinks((x.items || []).flatMap((it) => it.nodes || []))), timeCell(x.start, true), timeCell(x.end, true),
      x.allocation_id ? link(allocHref(x.allocation_id), x.allocation_id.slice(0, 8)) : "", long(x.last_error || "")]),
    all ? "no reservations" : "no pending or active reservations"));
  const cal = await api("/v1/calendar?by=flavor");
  const rows = [];
  for (const f of cal.flavors || []) {
    for (const sl of f.slots || []) rows.push([f.flavor, num(f.total), timeCell(sl.start), timeCell(sl.end), num(sl.free), num(sl.held)]);
  }
  fillSlot(root, "res-calendar", "Free nodes per flavor, next 7 days (cleaning gap " + cal.gap + ")", "wide", table("res-calendar-table",
    ["flavor", { label: "nodes", num: true }, "from", "to", { label: "free", num: true }, { label: "held", num: true }], rows, "no flavors"));
}

async function usage(r, root, first) {
  const w = r.params.get("window") === "7d" ? "7d" : "24h";
  if (first) {
    const sec = el("section", null, "wide");
    sec.id = "usage-window";
    const box = el("div", null, "actions");
    box.setAttribute("role", "group");
    box.setAttribute("aria-label", "window");
    for (const x of ["24h", "7d"]) {
      const b = button("Last " + x, () => { setParams("usage", new URLSearchParams("window=" + x)); refresh(); });
      b.setAttribute("aria-pressed", String(x === w));
      b.dataset.window = x;
      box.append(b);
    }
    sec.append(el("h2", "Usage over time"), box);
    root.append(sec);
  }
  for (const b of root.querySelectorAll("#usage-window button")) b.setAttribute("aria-pressed", String(b.dataset.window === w));
  if (!staff()) {
    fillSlot(root, "usage-pools", "Pools", "wide", el("p", "Usage is drawn from the audit log, which needs an operator or admin token.", "hint"));
    return;
  }
  const u = await api("/v1/usage?window=" + w);
  const legend = el("div", null, "legend");
  for (const k of ["allocated", "maintenance", "free"]) {
    const s = el("span");
    s.append(el("i", null, "sw-" + k), k);
    legend.append(s);
  }
  const charts = (u.pools || []).map((p) => {
    const box = el("div");
    box.append(el("h3", "Pool " + p.pool), chart(p, u.step));
    return box;
  });
  fillSlot(root, "usage-pools", "Nodes per pool, last " + w + " (average per " + u.step + ")", "wide", legend,
    ...(charts.length ? charts : [el("p", "no pools", "hint")]));
  fillSlot(root, "usage-owners", "Node-hours per owner, last " + w, "wide", table("owners-table", ["owner", { label: "node-hours", num: true }],
    (u.owners || []).map((o) => [o.owner, num(o.node_hours < 0.01 ? "< 0.01" : o.node_hours.toFixed(2))]), "no allocations in this window"));
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = String(text);
  return e;
}

// chart draws one pool's series as stacked bars in inline SVG (no library,
// no other origin): allocated at the bottom, then maintenance, then free.
function chart(p, step) {
  const W = 720, H = 180, L = 34, B = 22, T = 6;
  const pts = p.points || [];
  const maxY = Math.max(1, ...pts.map((x) => x.allocated + x.maintenance + x.free));
  const y = (v) => T + (H - T - B) * (1 - v / maxY);
  const bw = (W - L - 4) / Math.max(1, pts.length);
  const s = svg("svg", { viewBox: "0 0 " + W + " " + H, class: "chart", role: "img" });
  const last = pts[pts.length - 1] || { allocated: 0, maintenance: 0, free: 0 };
  s.append(svg("title", {}, "Pool " + p.pool + ": nodes allocated, in maintenance and free per " + step +
    "; latest step " + last.allocated + " allocated, " + last.maintenance + " in maintenance, " + last.free + " free"));
  for (const v of [0, maxY / 2, maxY]) {
    s.append(svg("line", { x1: L, x2: W, y1: y(v), y2: y(v) }), svg("text", { x: L - 4, y: y(v) + 4, "text-anchor": "end" }, Math.round(v * 10) / 10));
  }
  pts.forEach((x, i) => {
    let base = 0;
    for (const k of ["allocated", "maintenance", "free"]) {
      if (x[k] > 0) {
        const r = svg("rect", { x: L + i * bw + 1, width: Math.max(1, bw - 2), y: y(base + x[k]), height: y(base) - y(base + x[k]), class: k });
        r.append(svg("title", {}, when(x.start) + ": " + x[k] + " " + k));
        s.append(r);
      }
      base += x[k];
    }
    if (i % Math.ceil(pts.length / 6) === 0) {
      const d = new Date(x.start);
      const hm = String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
      const label = pts.length > 24 ? (d.getMonth() + 1) + "/" + d.getDate() + " " + hm : hm;
      s.append(svg("text", { x: L + i * bw + 2, y: H - 6 }, label));
    }
  });
  return s;
}

// ---- sign in and out ----

function show(board, error) {
  $("#board").hidden = !board;
  $("#nav").hidden = !board;
  $("#login").hidden = board;
  $("#signout").hidden = !board;
  $("#whoami").textContent = board && me ? me.role + " token " + token().slice(0, 8) + "…" + (me.owners && me.owners.length ? " for " + me.owners.join(", ") : "") : "";
  $("#error").textContent = error || "";
}

function signOut(error) {
  clearTimeout(timer);
  sessionStorage.removeItem("ironpool-token");
  me = null;
  route = null;
  $("#view").replaceChildren();
  show(false, error);
  $("#token").focus();
}

document.addEventListener("DOMContentLoaded", () => {
  $("#login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem("ironpool-token", $("#token").value.trim());
    $("#token").value = "";
    me = null;
    route = null;
    refresh();
  });
  $("#signout").addEventListener("click", () => signOut());
  $("#confirm-cancel").addEventListener("click", () => $("#confirm").close());
  window.addEventListener("hashchange", () => { if (token()) refresh(); });
  if (token()) refresh(); else show(false);
});
