// miffy report page: plain DOM, no dependencies, no build step. Every
// value from the server is put in the page as text, never as HTML.
"use strict";

const state = { range: "all", from: "", to: "", sort: "route", asc: true, filter: "" };
const view = document.getElementById("view");

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids.flat()) {
    if (k === null || k === undefined) continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

function svgEl(tag, attrs) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

function rangeQuery() {
  const q = new URLSearchParams({ range: state.range });
  if (state.range === "custom") {
    if (state.from) q.set("from", new Date(state.from).toISOString().replace(/\.\d+Z$/, "Z"));
    if (state.to) q.set("to", new Date(state.to).toISOString().replace(/\.\d+Z$/, "Z"));
  }
  return q;
}

async function getJSON(url) {
  const r = await fetch(url, { credentials: "same-origin" });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || r.status + " " + r.statusText);
  return body;
}

const pct = (n, d) => (d > 0 ? (100 * n / d).toFixed(n && n / d < 0.001 ? 3 : 1) + "%" : "–");
const ms = (v) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

function badge(v, reasons) {
  return el("span", { class: "badge " + (v || ""), title: (reasons || []).join("\n"), "data-verdict": v || "" }, v || "–");
}

// ---- routes table -------------------------------------------------------

const columns = [
  ["route", "ROUTE", (r) => r.route],
  ["compared", "COMPARED", (r) => r.compared],
  ["rate", "MISMATCH RATE", (r) => (r.compared ? r.mismatches / r.compared : 0)],
  ["regressions", "REGRESSIONS", (r) => r.regressions],
  ["noise", "NOISE", (r) => r.noise],
  ["errors", "CAND ERRORS", (r) => r.candidate_errors],
  ["refp50", "REF p50", (r) => r.latency_ms.reference.p50],
  ["refp99", "REF p99", (r) => r.latency_ms.reference.p99],
  ["candp50", "CAND p50", (r) => r.latency_ms.candidate.p50],
  ["candp99", "CAND p99", (r) => r.latency_ms.candidate.p99],
  ["verdict", "VERDICT", (r) => ({ fail: 0, inconclusive: 1, pass: 2 })[r.verdict] ?? 3],
];

async function showRoutes() {
  const data = await getJSON("/api/routes?" + rangeQuery());
  const filter = el("input", { class: "filter", placeholder: "filter routes", value: state.filter, "aria-label": "filter routes" });
  const table = el("table", { id: "routes" });
  const draw = () => {
    const col = columns.find((c) => c[0] === state.sort) || columns[0];
    const rows = data.routes
      .filter((r) => r.route.toLowerCase().includes(state.filter.toLowerCase()))
      .sort((a, b) => {
        const x = col[2](a), y = col[2](b);
        return (x < y ? -1 : x > y ? 1 : 0) * (state.asc ? 1 : -1);
      });
    table.replaceChildren(
      el("thead", {}, el("tr", {}, columns.map(([key, label]) =>
        el("th", { class: key === state.sort ? "sorted" + (state.asc ? " asc" : "") : "", onclick: () => {
          state.asc = state.sort === key ? !state.asc : true; state.sort = key; draw();
        } }, label)))),
      el("tbody", {}, rows.map((r) => el("tr", { "data-route": r.route },
        el("td", {}, el("a", { href: "#/route/" + encodeURIComponent(r.route) }, r.route),
          r.rate_basis === "published" ? el("span", { title: "no tallies cover this route: the rate is over published records" }, " *") : null),
        el("td", {}, r.compared),
        el("td", {}, pct(r.mismatches, r.compared)),
        el("td", {}, r.regressions),
        el("td", {}, r.noise),
        el("td", {}, r.candidate_errors + " (" + pct(r.candidate_errors, r.compared) + ")"),
        el("td", {}, ms(r.latency_ms.reference.p50)),
        el("td", {}, ms(r.latency_ms.reference.p99)),
        el("td", {}, ms(r.latency_ms.candidate.p50)),
        el("td", {}, ms(r.latency_ms.candidate.p99)),
        el("td", {}, badge(r.verdict, r.reasons), el("ul", { class: "reasons" }, (r.reasons || []).map((x) => el("li", {}, x))))))),
    );
  };
  filter.addEventListener("input", () => { state.filter = filter.value; draw(); });
  draw();
  // A live update must not take the filter from under the user's fingers.
  const typing = document.activeElement && document.activeElement.classList.contains("filter");
  const rollouts = await getJSON("/api/rollouts").catch(() => []);
  show(el("h2", {}, "Routes ", badge(data.verdict)), filter, table, rolloutsTable(rollouts));
  if (typing) { filter.focus(); filter.setSelectionRange(filter.value.length, filter.value.length); }
  status(data);
}

function status(data) {
  document.getElementById("status").textContent =
    data.records + " records and " + data.tallies + " tallies read" + (data.unreadable ? ", " + data.unreadable + " unreadable" : "");
}

// ---- a route ------------------------------------------------------------

// tree builds nested nodes from paths such as $.a.b[2], header:X, status.
function tree(paths) {
  const root = { name: "", kids: new Map(), count: 0, noise: 0, path: null };
  for (const p of paths) {
    const parts = p.path.startsWith("$") ? ["$", ...splitPath(p.path.slice(1))] : [p.path];
    let n = root, acc = "";
    for (const part of parts) {
      acc += part === "$" ? "$" : part;
      if (!n.kids.has(part)) n.kids.set(part, { name: part, kids: new Map(), count: 0, noise: 0, path: acc });
      n = n.kids.get(part);
      n.count += p.count; n.noise += p.noise;
    }
    n.leaf = p;
  }
  return root;
}

function splitPath(rest) {
  const out = [];
  const re = /\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\]|\["(?:[^"\\]|\\.)*"\]/g;
  let m;
  while ((m = re.exec(rest)) !== null) out.push(m[0]);
  return out.length ? out : [rest];
}

function drawTree(node, compared, examples, route) {
  const ul = el("ul", {});
  for (const kid of node.kids.values()) {
    const label = el("span", {
      class: "node" + (kid.count === kid.noise ? " noise-only" : ""), "data-path": kid.path,
      title: kid.leaf ? "open an example" : "",
      onclick: () => {
        const target = kid.leaf ? kid.leaf.path : kid.path;
        const ref = examples[target] || firstExample(kid, examples);
        if (ref) location.hash = "#/record/" + ref.partition + "/" + ref.offset + "?path=" + encodeURIComponent(target) + "&route=" + encodeURIComponent(route);
      },
    }, kid.name);
    ul.append(el("li", {}, label,
      el("span", { class: "count" }, kid.leaf
        ? kid.count + " diff" + (kid.noise ? ", " + kid.noise + " noise" : "") + " · " + pct(kid.count, compared) + " of requests"
        : kid.count + " differences below" + (kid.noise ? ", " + kid.noise + " noise" : "")),
      kid.kids.size ? drawTree(kid, compared, examples, route) : null));
  }
  return ul;
}

function firstExample(node, examples) {
  if (node.leaf && examples[node.leaf.path]) return examples[node.leaf.path];
  for (const k of node.kids.values()) { const r = firstExample(k, examples); if (r) return r; }
  return null;
}

function chart(series) {
  const W = 600, H = 160, P = 24;
  const svg = svgEl("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img", "aria-label": "rates and latency over time" });
  if (!series || series.length === 0) return svg;
  const xs = (i) => P + (series.length === 1 ? (W - 2 * P) / 2 : (i * (W - 2 * P)) / (series.length - 1));
  const ys = (v, max) => H - P - (max > 0 ? v / max : 0) * (H - 2 * P);
  const line = (vals, max, color, dash) => {
    const pts = vals.map((v, i) => `${xs(i).toFixed(1)},${ys(v, max).toFixed(1)}`).join(" ");
    svg.append(svgEl("polyline", { points: pts, fill: "none", stroke: color, "stroke-width": 2, "stroke-dasharray": dash || "" }));
    vals.forEach((v, i) => svg.append(svgEl("circle", { cx: xs(i).toFixed(1), cy: ys(v, max).toFixed(1), r: 3, fill: color })));
  };
  const rate = series.map((p) => (p.compared ? p.mismatches / p.compared : 0));
  const err = series.map((p) => (p.compared ? p.candidate_errors / p.compared : 0));
  const ref = series.map((p) => p.reference_p99), cand = series.map((p) => p.candidate_p99);
  const maxRate = Math.max(...rate, ...err, 0.0001), maxLat = Math.max(...ref, ...cand, 0.001);
  line(rate, maxRate, "#dc2626"); line(err, maxRate, "#7c3aed");
  line(ref, maxLat, "#2563eb", "4 3"); line(cand, maxLat, "#ea580c", "4 3");
  svg.append(svgEl("line", { x1: P, y1: H - P, x2: W - P, y2: H - P, stroke: "#e5e7eb" }));
  const t0 = svgEl("text", { x: P, y: H - 6, "font-size": 10, fill: "#6b7280" }); t0.textContent = new Date(series[0].t).toLocaleTimeString();
  const t1 = svgEl("text", { x: W - P, y: H - 6, "font-size": 10, fill: "#6b7280", "text-anchor": "end" }); t1.textContent = new Date(series[series.length - 1].t).toLocaleTimeString();
  svg.append(t0, t1);
  return svg;
}

// show replaces the view's content, leaving out absent (null) parts.
function show(...parts) {
  view.replaceChildren(...parts.filter((p) => p !== null && p !== undefined));
}

async function showRoute(name) {
  const r = await getJSON("/api/route?" + rangeQuery() + "&route=" + encodeURIComponent(name));
  const ro = await getJSON("/api/rollout?route=" + encodeURIComponent(name)).catch(() => null);
  const examples = r.examples || {};
  const paths = r.top_paths || [];
  show(
    el("p", {}, el("a", { href: "#/" }, "← routes")),
    el("h2", { id: "route-name" }, r.route, " ", badge(r.verdict, r.reasons)),
    ro ? el("p", { id: "route-rollout" }, "Rollout: step " + ro.step + " · weight " + fmtWeight(ro.weight) + " · " + ro.decision + " · ", el("a", { href: "#/rollout/" + encodeURIComponent(r.route) }, "timeline")) : null,
    el("ul", { class: "reasons", id: "reasons" }, (r.reasons || []).map((x) => el("li", {}, x))),
    el("p", {}, `${r.compared} compared · ${pct(r.mismatches, r.compared)} mismatch (${r.regressions} regressions, ${r.noise} noise) · ${r.candidate_errors} candidate errors · p99 ${ms(r.latency_ms.reference.p99)} / ${ms(r.latency_ms.candidate.p99)} ms (source: ${r.source})`),
    el("div", { class: "grid" },
      el("section", {}, el("h3", {}, "Differing paths"),
        paths.length ? el("div", { class: "tree", id: "tree" }, drawTree(tree(paths), r.compared, examples, r.route)) : el("p", { class: "muted" }, "no differences"),
        el("h3", {}, "Recent mismatches"),
        el("ul", { class: "recent", id: "recent" }, (r.recent || []).slice(0, 20).map((x) =>
          el("li", { "data-id": x.id }, el("a", { href: "#/record/" + x.partition + "/" + x.offset + "?route=" + encodeURIComponent(r.route) + (x.paths && x.paths.length ? "&path=" + encodeURIComponent(x.paths[0].path) : "") },
            new Date(x.timestamp).toLocaleTimeString() + " " + x.id), " ", (x.paths || []).map((p) => p.path).join(", "))))),
      el("section", {}, el("h3", {}, "Over time"),
        el("p", { class: "legend" }, el("span", { class: "mm" }, "— mismatch rate "), el("span", { class: "err" }, "— candidate error rate "),
          el("span", { class: "ref" }, "- - reference p99 "), el("span", { class: "cand" }, "- - candidate p99")),
        chart(r.series))),
  );
}

// ---- rollouts -----------------------------------------------------------

const fmtWeight = (w) => Math.round(w * 100) / 100 + "%";
const rolloutState = (r) => (r.done ? "done" : r.paused ? "paused" : "active");

function decisionBadge(d) {
  return el("span", { class: "decision d-" + d, "data-decision": d }, d);
}

// rolloutsTable lists every route's rollout, or nothing when there is none.
function rolloutsTable(rollouts) {
  if (!rollouts || !rollouts.length) return null;
  return el("section", { id: "rollouts" }, el("h2", {}, "Rollouts"),
    el("table", {}, el("thead", {}, el("tr", {}, ["ROUTE", "STEP", "WEIGHT", "LAST DECISION", "AT", "STATE"].map((h) => el("th", {}, h)))),
      el("tbody", {}, rollouts.map((r) => el("tr", { "data-route": r.route },
        el("td", {}, el("a", { href: "#/rollout/" + encodeURIComponent(r.route) }, r.route)),
        el("td", {}, r.step), el("td", {}, fmtWeight(r.weight)),
        el("td", { title: (r.reasons || []).join("\n") }, r.decision ? decisionBadge(r.decision) : "–"),
        el("td", {}, r.decision ? new Date(r.time).toLocaleTimeString() : "–"),
        el("td", {}, rolloutState(r)))))));
}

// eventText is what a marker says on hover and in the detail panel.
function eventText(e) {
  const when = new Date(e.time).toLocaleString();
  if (e.command) return when + " · command " + e.command + (e.by ? " by " + e.by : "");
  return when + " · " + e.decision + (e.repeats ? " ×" + (e.repeats + 1) : "") + " · step " + e.step + " · weight " + fmtWeight(e.weight) +
    (e.controller ? " · " + e.controller : "") + ((e.reasons || []).length ? "\n" + e.reasons.join("\n") : "");
}

// timeline draws the weight over time as steps, a marker on each decision
// (hover: its reasons; click: the detail below) and each operator command
// along the top.
function timeline(events, onPick) {
  const W = 800, H = 220, L = 40, R = 16, T = 22, B = 24;
  const svg = svgEl("svg", { class: "chart timeline", id: "timeline", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "rollout weight over time with its decisions" });
  const decisions = events.filter((e) => !e.command);
  if (!events.length) return svg;
  const times = events.flatMap((e) => [Date.parse(e.time), e.first ? Date.parse(e.first) : NaN]).filter((x) => !isNaN(x));
  const t0 = Math.min(...times), t1 = Math.max(...times, t0 + 1000);
  const xs = (t) => L + ((Date.parse(t) - t0) / (t1 - t0)) * (W - L - R);
  const ys = (w) => T + (1 - w / 100) * (H - T - B);
  for (const w of [0, 25, 50, 75, 100]) {
    svg.append(svgEl("line", { x1: L, y1: ys(w), x2: W - R, y2: ys(w), stroke: "#e5e7eb" }));
    const lab = svgEl("text", { x: L - 4, y: ys(w) + 3, "font-size": 10, fill: "#6b7280", "text-anchor": "end" }); lab.textContent = w + "%";
    svg.append(lab);
  }
  if (decisions.length) {
    let d = `M${xs(decisions[0].first || decisions[0].time).toFixed(1)},${ys(decisions[0].weight).toFixed(1)}`;
    for (const e of decisions.slice(1)) d += ` H${xs(e.first || e.time).toFixed(1)} V${ys(e.weight).toFixed(1)}`;
    d += ` H${(W - R).toFixed(1)}`;
    svg.append(svgEl("path", { d, fill: "none", stroke: "#2563eb", "stroke-width": 2, class: "weight" }));
  }
  for (const e of events) {
    const cls = e.command ? "mark command" : "mark d-" + e.decision;
    const m = e.command
      ? svgEl("path", { d: `M${xs(e.time) - 5},${T - 14} h10 l-5,8 z`, class: cls, "data-command": e.command, "data-offset": e.offset, tabindex: 0 })
      : svgEl("circle", { cx: xs(e.time).toFixed(1), cy: ys(e.weight).toFixed(1), r: 5, class: cls, "data-decision": e.decision, "data-offset": e.offset, tabindex: 0 });
    const title = svgEl("title", {}); title.textContent = eventText(e);
    m.append(title);
    m.addEventListener("click", () => onPick(e));
    svg.append(m);
  }
  const a = svgEl("text", { x: L, y: H - 6, "font-size": 10, fill: "#6b7280" }); a.textContent = new Date(t0).toLocaleTimeString();
  const b = svgEl("text", { x: W - R, y: H - 6, "font-size": 10, fill: "#6b7280", "text-anchor": "end" }); b.textContent = new Date(t1).toLocaleTimeString();
  svg.append(a, b);
  return svg;
}

function eventDetail(e) {
  if (!e) return el("div", { id: "rollout-detail", class: "muted" }, "Click a marker for its reasons.");
  return el("div", { id: "rollout-detail", "data-offset": e.offset },
    el("p", {}, e.command ? el("span", { class: "decision command" }, e.command) : decisionBadge(e.decision), " ",
      new Date(e.time).toLocaleString(), e.command ? (e.by ? " · by " + e.by : "") : " · step " + e.step + " · weight " + fmtWeight(e.weight) + (e.controller ? " · controller " + e.controller : "") +
      (e.repeats ? " · " + (e.repeats + 1) + " holds since " + new Date(e.first).toLocaleTimeString() : "")),
    el("ul", { class: "reasons" }, (e.reasons || []).map((x) => el("li", {}, x))));
}

let picked = null; // the offset of the event whose detail is shown

async function showRollout(name) {
  const r = await getJSON("/api/rollout?route=" + encodeURIComponent(name));
  const events = r.events || [];
  const detail = el("div", {}, eventDetail(events.find((e) => e.offset === picked)));
  const pick = (e) => { picked = e.offset; detail.replaceChildren(eventDetail(e)); };
  show(
    el("p", {}, el("a", { href: "#/" }, "← routes"), " · ", el("a", { href: "#/route/" + encodeURIComponent(r.route) }, "evidence of " + r.route)),
    el("h2", { id: "rollout-name" }, "Rollout of " + r.route + " ", r.decision ? decisionBadge(r.decision) : null),
    el("p", { id: "rollout-state" }, "step " + r.step + " · weight " + fmtWeight(r.weight) + " · " + rolloutState(r) + (r.controller ? " · controller " + r.controller : "")),
    el("p", { class: "legend" }, ["advance", "hold", "rollback", "promote", "pause", "resume", "abort"].flatMap((d) => [decisionBadge(d), " "]), el("span", { class: "decision command" }, "▼ command")),
    timeline(events, pick),
    detail,
    el("h3", {}, "Decisions and commands (newest first)"),
    el("table", { id: "rollout-events" }, el("thead", {}, el("tr", {}, ["TIME", "STEP", "WEIGHT", "DECISION", "REASONS", "CONTROLLER"].map((h) => el("th", {}, h)))),
      el("tbody", {}, events.slice().reverse().map((e) => el("tr", { "data-offset": e.offset },
        el("td", {}, new Date(e.time).toLocaleString()),
        el("td", {}, e.command ? "" : e.step), el("td", {}, e.command ? "" : fmtWeight(e.weight)),
        el("td", {}, e.command ? el("span", { class: "decision command" }, e.command) : decisionBadge(e.decision), e.repeats ? " ×" + (e.repeats + 1) : ""),
        el("td", { class: "reasons-cell" }, e.command ? (e.by ? "by " + e.by : "") : (e.reasons || []).join("; ")),
        el("td", {}, e.controller || ""))))),
  );
}

// ---- an example ---------------------------------------------------------

function jsonPathKey(k) {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? "." + k : "[" + JSON.stringify(k) + "]";
}

// renderJSON pretty-prints v into pre, wrapping each value whose path
// differs in a span of its class.
function renderJSON(v, path, indent, marks, out) {
  const mark = marks.get(path);
  const target = mark ? el("span", { class: "diff-" + mark, "data-path": path, title: path + " (" + mark + ")" }) : null;
  const into = target || out;
  const pad = "  ".repeat(indent);
  if (Array.isArray(v)) {
    into.append("[");
    v.forEach((x, i) => { into.append("\n" + pad + "  "); renderJSON(x, path + "[" + i + "]", indent + 1, marks, into); if (i < v.length - 1) into.append(","); });
    into.append((v.length ? "\n" + pad : "") + "]");
  } else if (v && typeof v === "object") {
    const keys = Object.keys(v);
    into.append("{");
    keys.forEach((k, i) => {
      into.append("\n" + pad + "  ", el("span", { class: "key" }, JSON.stringify(k)), ": ");
      renderJSON(v[k], path + jsonPathKey(k), indent + 1, marks, into);
      if (i < keys.length - 1) into.append(",");
    });
    into.append((keys.length ? "\n" + pad : "") + "}");
  } else {
    into.append(JSON.stringify(v));
  }
  if (target) out.append(target);
}

function body(b, marks) {
  const pre = el("pre", { class: "body" });
  if (!b) { pre.append("(no body)"); return pre; }
  if (b.type === "json") renderJSON(b.value, "$", 0, marks, pre);
  else pre.append((b.type || "") + (b.truncated ? " (truncated, " + b.size + " bytes)" : "") + "\n" + (b.value ?? ""));
  if (marks.has("body")) pre.classList.add("diff-" + marks.get("body"));
  return pre;
}

function side(title, s, marks) {
  if (!s) return null;
  const resp = s.response || {};
  const st = el("div", { class: "hdr" + (marks.has("status") ? " diff-" + marks.get("status") : ""), "data-path": "status" },
    resp.error ? "error: " + resp.error + (s.error_kind ? " (" + s.error_kind + ")" : "") : "status " + resp.status, " · " + (s.duration_ms ?? "?") + " ms");
  const hdrs = el("div", { class: "hdr" }, Object.entries(resp.headers || {}).map(([k, v]) => {
    const m = marks.get("header:" + k) || [...marks.keys()].filter((p) => p.toLowerCase() === "header:" + k).map((p) => marks.get(p))[0];
    return el("div", { class: m ? "diff-" + m : "", "data-path": "header:" + k }, k + ": " + v);
  }));
  return el("div", { class: "side" + (marks.has("error") && title === "candidate" ? " diff-" + marks.get("error") : "") }, el("h3", {}, title), st, hdrs, el("hr", {}), body(resp.body, marks));
}

async function showRecord(partition, offset, params) {
  const rec = await getJSON("/api/records/" + partition + "/" + offset);
  const marks = new Map();
  for (const d of rec.differences || []) marks.set(d.path, d.class || "regression");
  const secMarks = new Map(); // the secondary's differences are not published
  const req = rec.request || {};
  const wanted = params.get("path");
  show(
    el("p", {}, el("a", { href: "#/route/" + encodeURIComponent(params.get("route") || rec.route) }, "← " + (params.get("route") || rec.route)),
      " · ", el("a", { href: location.hash, id: "permalink" }, "permalink"), " · record ", rec.id),
    el("p", { class: "legend" }, el("span", { class: "legend-box regression" }), " regression ", el("span", { class: "legend-box noise" }), " noise"),
    el("h3", {}, "Request (as published, redacted)"),
    el("pre", { class: "hdr" }, (req.method || "") + " " + (req.uri || "") + "\n" + Object.entries(req.headers || {}).map(([k, v]) => k + ": " + v).join("\n")),
    req.body ? body(req.body, new Map()) : null,
    el("h3", {}, "Differences"),
    el("ul", {}, (rec.differences || []).map((d) => el("li", { class: "diff-" + (d.class || "regression"), "data-path": d.path },
      d.path + " " + d.kind + ": " + JSON.stringify(d.reference) + " → " + JSON.stringify(d.candidate) + " (" + (d.class || "regression") + ")"))),
    el("div", { class: "sides", id: "sides" }, side("reference", rec.reference, marks), side("candidate", rec.candidate, marks), side("secondary", rec.secondary, secMarks)),
  );
  if (wanted) {
    const hit = [...document.querySelectorAll("#sides [data-path]")].find((e) => e.dataset.path === wanted);
    if (hit) { hit.classList.add("wanted"); hit.scrollIntoView({ block: "center" }); }
  }
}

// ---- routing, range, live -------------------------------------------------

async function render() {
  const h = location.hash || "#/";
  try {
    let m;
    if ((m = h.match(/^#\/route\/(.+)$/))) await showRoute(decodeURIComponent(m[1]));
    else if ((m = h.match(/^#\/rollout\/(.+)$/))) await showRollout(decodeURIComponent(m[1]));
    else if ((m = h.match(/^#\/record\/(\d+)\/(\d+)(?:\?(.*))?$/))) await showRecord(m[1], m[2], new URLSearchParams(m[3] || ""));
    else await showRoutes();
  } catch (e) {
    view.replaceChildren(el("p", { class: "error" }, "Could not load: " + e.message));
  }
}

function setRange(r) {
  state.range = r;
  state.from = document.getElementById("from").value;
  state.to = document.getElementById("to").value;
  for (const b of document.querySelectorAll("#range button")) b.classList.toggle("on", b.dataset.range === r);
  render();
}

for (const b of document.querySelectorAll("#range button")) b.addEventListener("click", () => setRange(b.dataset.range));
window.addEventListener("hashchange", render);
setRange("all");

let pending = false;
const events = new EventSource("/api/events");
events.addEventListener("open", () => document.getElementById("live").classList.add("on"));
events.addEventListener("error", () => document.getElementById("live").classList.remove("on"));
events.addEventListener("update", () => {
  // An example never changes; the tables and the route do.
  if ((location.hash || "").startsWith("#/record/") || pending) return;
  pending = true;
  render().finally(() => { pending = false; });
});
