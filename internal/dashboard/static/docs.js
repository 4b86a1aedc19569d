// A small API viewer over /openapi.json, served with the dashboard so it
// works offline: operations by tag, with parameters, request body fields and
// responses. Like the dashboard it inserts every value as text.
"use strict";

const $ = (sel) => document.querySelector(sel);
let spec = null;

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

// deref follows a local $ref (#/components/schemas/X).
function deref(s) {
  let guard = 0;
  while (s && s.$ref && guard++ < 10) {
    s = s.$ref.replace(/^#\//, "").split("/").reduce((o, k) => (o ? o[k] : undefined), spec);
  }
  return s || {};
}

function typeOf(s) {
  s = deref(s);
  if (s.type === "array") return typeOf(s.items) + "[]";
  if (Array.isArray(s.type)) return s.type.filter((t) => t !== "null").join("|");
  if (s.type === "object" && s.additionalProperties) return "map of " + typeOf(s.additionalProperties);
  return s.type || (s.properties ? "object" : "any");
}

function limits(s) {
  s = deref(s);
  const out = [];
  for (const [k, label] of [["minimum", "≥"], ["maximum", "≤"], ["minLength", "min length "], ["maxLength", "max length "], ["maxItems", "max items "]]) {
    if (s[k] !== undefined) out.push(label + s[k]);
  }
  if (s.enum) out.push("one of " + s.enum.join(", "));
  if (s.format) out.push(s.format);
  return out.join("; ");
}

function table(headers, rows) {
  const wrap = el("div", null, "scroll");
  const t = el("table");
  const tr = el("tr");
  for (const h of headers) { const th = el("th", h); th.scope = "col"; tr.append(th); }
  const head = el("thead");
  head.append(tr);
  const body = el("tbody");
  for (const r of rows) {
    const row = el("tr");
    for (const c of r) row.append(el("td", c));
    body.append(row);
  }
  t.append(head, body);
  wrap.append(t);
  return wrap;
}

function fields(schema, prefix, rows, depth) {
  const s = deref(schema);
  const req = new Set(s.required || []);
  for (const [name, p] of Object.entries(s.properties || {})) {
    const d = deref(p);
    rows.push([prefix + name, typeOf(p), req.has(name) ? "yes" : "", [d.description || p.description || "", limits(p)].filter(Boolean).join(" — ")]);
    const inner = d.type === "array" ? deref(d.items) : d;
    if (depth < 2 && inner.properties) fields(inner, prefix + name + (d.type === "array" ? "[]." : "."), rows, depth + 1);
  }
  return rows;
}

function operation(path, method, op) {
  const sec = el("section", null, "wide op");
  sec.id = "op-" + (op.operationId || method + path).replace(/[^A-Za-z0-9_-]/g, "-");
  sec.dataset.search = [method, path, op.summary, op.operationId, ...(op.tags || [])].join(" ").toLowerCase();
  const h = el("h3");
  h.append(el("code", method.toUpperCase() + " " + path), " ", el("span", op.summary || ""));
  sec.append(h);
  if (op.description) sec.append(el("p", op.description));
  const params = (op.parameters || []).map((p) => {
    const d = deref(p);
    return [d.name, d.in, typeOf(d.schema), d.required ? "yes" : "", [d.description || "", limits(d.schema)].filter(Boolean).join(" — ")];
  });
  if (params.length) sec.append(el("h4", "Parameters"), table(["name", "in", "type", "required", "description"], params));
  const body = op.requestBody && deref(op.requestBody).content;
  if (body && body["application/json"]) {
    sec.append(el("h4", "Request body"), table(["field", "type", "required", "description"], fields(body["application/json"].schema, "", [], 0)));
  }
  const resp = Object.entries(op.responses || {}).map(([code, r]) => [code, deref(r).description || ""]);
  if (resp.length) sec.append(el("h4", "Responses"), table(["status", "meaning"], resp));
  return sec;
}

function render() {
  $("#api-title").textContent = (spec.info && spec.info.title || "API") + " " + (spec.info && spec.info.version || "");
  $("#api-desc").textContent = (spec.info && spec.info.description) || "";
  const byTag = {};
  for (const [path, item] of Object.entries(spec.paths || {})) {
    for (const [method, op] of Object.entries(item)) {
      if (!["get", "put", "post", "delete", "patch"].includes(method)) continue;
      const tag = (op.tags && op.tags[0]) || "other";
      (byTag[tag] = byTag[tag] || []).push(operation(path, method, op));
    }
  }
  const root = $("#ops");
  root.replaceChildren();
  for (const tag of Object.keys(byTag).sort()) {
    const g = el("div", null, "tag");
    g.append(el("h2", tag), ...byTag[tag]);
    root.append(g);
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  try {
    const resp = await fetch("/openapi.json", { headers: { Accept: "application/json" } });
    spec = await resp.json();
    render();
  } catch (e) {
    $("#ops").replaceChildren(el("p", "Could not read /openapi.json: " + e.message));
  }
  $("#doc-search").addEventListener("input", (ev) => {
    const q = ev.target.value.trim().toLowerCase();
    for (const s of document.querySelectorAll("#ops .op")) s.hidden = !!q && !s.dataset.search.includes(q);
    for (const g of document.querySelectorAll("#ops .tag")) g.hidden = !g.querySelector(".op:not([hidden])");
  });
});
