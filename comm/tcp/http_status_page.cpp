// The page GET / serves (comm/tcp/http_status.h): static markup whose values
// are all placeholders ("—"); the script fills them from /status.json every
// second. Values from the coordinator go in with textContent only, never as
// markup, so a member's name cannot inject anything.
#include <string>

#include "comm/tcp/http_status.h"

namespace zeroth {

namespace {

const char* const kStyle = R"CSS(
:root { color-scheme: light dark; --fg: #1d232a; --muted: #5f6b76; --bg: #f4f6f8; --card: #fff;
        --line: #d9dee3; --accent: #2f6fdb; --bad: #c0392b; --ok: #1e8e3e; --warn: #b7791f; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6e9ec; --muted: #9aa5b1; --bg: #14181c; --card: #1c2228; --line: #2d353d;
          --accent: #6ea0ff; --bad: #ff6b5b; --ok: #4cc36a; --warn: #e0b050; }
}
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; background: var(--bg); color: var(--fg); }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 6px 18px; padding: 12px 20px;
         background: var(--card); border-bottom: 1px solid var(--line); }
header h1 { font-size: 18px; margin: 0; }
.muted, .empty { color: var(--muted); }
#connection.ok { color: var(--ok); }
#connection.bad { color: var(--bad); }
main { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 16px; padding: 16px 20px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 12px 16px; min-width: 0; }
section.wide { grid-column: 1 / -1; }
h2 { font-size: 12px; font-weight: 600; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); margin: 0 0 10px; }
.big { font-size: 28px; font-weight: 600; font-variant-numeric: tabular-nums; }
.bar { height: 6px; background: var(--line); border-radius: 3px; overflow: hidden; margin: 6px 0 12px; }
.bar > div { height: 100%; width: 0; background: var(--accent); transition: width .3s; }
dl { display: grid; grid-template-columns: auto 1fr; gap: 4px 16px; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; font-variant-numeric: tabular-nums; }
.unit { color: var(--muted); }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); overflow-wrap: anywhere; }
th { color: var(--muted); font-weight: 500; }
.num { text-align: right; }
tr.nonzero td { color: var(--warn); }
.state-active { color: var(--ok); }
.state-joining, .state-leaving { color: var(--warn); }
.state-lost, .state-dead, .state-failed, .state-evicted { color: var(--bad); }
svg { display: block; width: 100%; max-width: 960px; height: auto; }
#loss-curve-path { fill: none; stroke: var(--accent); stroke-width: 2; vector-effect: non-scaling-stroke; }
.dot { fill: var(--accent); }
.axis { stroke: var(--line); stroke-width: 1; }
.tick { fill: var(--muted); font-size: 11px; }
)CSS";

const char* const kBody = R"HTML(
<header>
  <h1>zeroth · <span id="run">—</span></h1>
  <span id="connection">connecting…</span>
  <span class="muted">updated <span id="updated">—</span></span>
</header>
<main>
  <section>
    <h2>Progress</h2>
    <div class="big"><span id="step">—</span> <span class="unit">/</span> <span id="steps">—</span></div>
    <div class="bar"><div id="progress"></div></div>
    <dl>
      <dt>epoch</dt><dd id="epoch">—</dd>
      <dt>step rate</dt><dd><span id="steps-per-second">—</span> <span class="unit">steps/s</span></dd>
      <dt>loss</dt><dd id="loss">—</dd>
    </dl>
  </section>
  <section>
    <h2>Traffic per member per step</h2>
    <dl>
      <dt>on the wire</dt><dd><span id="bytes-per-member-per-step">—</span> <span class="unit">B</span></dd>
      <dt>payload</dt><dd><span id="payload-bytes-per-member-per-step">—</span> <span class="unit">B</span></dd>
      <dt>wire / payload</dt><dd id="overhead">—</dd>
    </dl>
  </section>
  <section>
    <h2>Rejected messages: <span id="rejections-total">—</span></h2>
    <table>
      <thead><tr><th>reason</th><th class="num">count</th></tr></thead>
      <tbody id="rejections"></tbody>
    </table>
  </section>
  <section class="wide">
    <h2>Members: <span id="members-count">—</span>
      <span class="muted">(min <span id="min-workers">—</span>, max <span id="max-workers">—</span>)</span></h2>
    <table>
      <thead><tr><th>id</th><th>name</th><th>address</th><th>backend</th><th>state</th>
        <th class="num">last seen</th><th class="num">steps contributed</th></tr></thead>
      <tbody id="members"></tbody>
    </table>
  </section>
  <section class="wide">
    <h2>Loss by step</h2>
    <svg id="loss-curve" viewBox="0 0 640 240" role="img" aria-label="loss by step"></svg>
  </section>
</main>
)HTML";

const char* const kScript = R"JS(
"use strict";
const $ = (id) => document.getElementById(id);
const SVG_NS = "http://www.w3.org/2000/svg";
const DASH = "\u2014";

const isNum = (v) => typeof v === "number" && Number.isFinite(v);
const setText = (id, v) => { $(id).textContent = v; };
const asInt = (v) => (isNum(v) ? String(Math.round(v)) : DASH);
const asFixed = (v, digits) => (isNum(v) ? v.toFixed(digits) : DASH);
const asBytes = (v) => (isNum(v) ? (Number.isInteger(v) ? String(v) : v.toFixed(1)) : DASH);
const asStr = (v) => (v === undefined || v === null ? DASH : String(v));
const asAge = (ms) => (!isNum(ms) ? DASH : ms < 1000 ? Math.round(ms) + " ms ago" : (ms / 1000).toFixed(1) + " s ago");

function cell(tr, value, cls) {
  const td = document.createElement("td");
  td.textContent = value;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function emptyRow(cols, message) {
  const tr = document.createElement("tr");
  cell(tr, message, "empty").colSpan = cols;
  return tr;
}

function renderMembers(members) {
  const rows = [];
  for (const m of members) {
    if (!m || typeof m !== "object") continue;
    const tr = document.createElement("tr");
    tr.dataset.memberId = asStr(m.id);
    cell(tr, asStr(m.id));
    cell(tr, asStr(m.name));
    cell(tr, asStr(m.address));
    cell(tr, asStr(m.backend));
    const state = asStr(m.state);
    cell(tr, state, "state-" + state.replace(/[^A-Za-z0-9_-]/g, ""));
    cell(tr, asAge(m.last_seen_ms), "num");
    cell(tr, asInt(m.steps_contributed), "num");
    rows.push(tr);
  }
  if (rows.length === 0) rows.push(emptyRow(6, "no members"));
  $("members").replaceChildren(...rows);
}

function renderRejections(rejections) {
  const entries = rejections && typeof rejections === "object" ? Object.entries(rejections) : [];
  entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const rows = [];
  let total = 0;
  for (const [reason, count] of entries) {
    const tr = document.createElement("tr");
    tr.dataset.reason = reason;
    if (isNum(count) && count > 0) tr.className = "nonzero";
    cell(tr, reason);
    cell(tr, asInt(count), "num");
    if (isNum(count)) total += count;
    rows.push(tr);
  }
  if (rows.length === 0) rows.push(emptyRow(2, "none"));
  $("rejections").replaceChildren(...rows);
  setText("rejections-total", String(total));
}

function svgEl(name, attrs, text) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function renderCurve(curve) {
  const W = 640, H = 240, L = 64, R = 16, T = 12, B = 32;
  const pw = W - L - R, ph = H - T - B;
  const points = (Array.isArray(curve) ? curve : [])
    .filter((p) => Array.isArray(p) && isNum(p[0]) && isNum(p[1]));
  const kids = [
    svgEl("line", { class: "axis", x1: L, y1: T, x2: L, y2: T + ph }),
    svgEl("line", { class: "axis", x1: L, y1: T + ph, x2: L + pw, y2: T + ph }),
  ];
  if (points.length === 0) {
    kids.push(svgEl("text", { class: "tick", x: L + pw / 2, y: T + ph / 2, "text-anchor": "middle" }, "no loss measured yet"));
    $("loss-curve").replaceChildren(...kids);
    return;
  }
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const [x, y] of points) {
    x0 = Math.min(x0, x); x1 = Math.max(x1, x);
    y0 = Math.min(y0, y); y1 = Math.max(y1, y);
  }
  if (x1 === x0) x1 = x0 + 1;
  const pad = (y1 - y0) * 0.05 || Math.abs(y0) * 0.05 || 0.05;
  y0 -= pad; y1 += pad;
  const X = (v) => L + ((v - x0) / (x1 - x0)) * pw;
  const Y = (v) => T + (1 - (v - y0) / (y1 - y0)) * ph;
  const d = points.map(([x, y], i) => (i ? "L" : "M") + X(x).toFixed(1) + " " + Y(y).toFixed(1)).join(" ");
  kids.push(svgEl("path", { id: "loss-curve-path", d }));
  const last = points[points.length - 1];
  kids.push(svgEl("circle", { class: "dot", cx: X(last[0]).toFixed(1), cy: Y(last[1]).toFixed(1), r: 3 }));
  const tick = (x, y, anchor, text) => svgEl("text", { class: "tick", x, y, "text-anchor": anchor }, text);
  kids.push(tick(L - 6, T + 10, "end", (y1 - pad).toPrecision(4)));
  kids.push(tick(L - 6, T + ph, "end", (y0 + pad).toPrecision(4)));
  kids.push(tick(L, T + ph + 18, "start", "step " + points[0][0]));
  kids.push(tick(L + pw, T + ph + 18, "end", "step " + last[0]));
  $("loss-curve").replaceChildren(...kids);
}

function render(s) {
  if (!s || typeof s !== "object" || Array.isArray(s)) throw new Error("status is not a JSON object");
  setText("run", asStr(s.run));
  document.title = "zeroth \u00b7 " + asStr(s.run);
  setText("step", asInt(s.step));
  setText("steps", asInt(s.steps));
  setText("epoch", asInt(s.epoch));
  const done = isNum(s.step) && isNum(s.steps) && s.steps > 0 ? Math.min(100, (100 * s.step) / s.steps) : 0;
  $("progress").style.width = done.toFixed(1) + "%";
  setText("steps-per-second", asFixed(s.steps_per_second, 2));
  setText("loss", asFixed(s.loss, 4));
  const wire = s.bytes_per_member_per_step, payload = s.payload_bytes_per_member_per_step;
  setText("bytes-per-member-per-step", asBytes(wire));
  setText("payload-bytes-per-member-per-step", asBytes(payload));
  setText("overhead", isNum(wire) && isNum(payload) && payload > 0 ? "\u00d7" + (wire / payload).toFixed(2) : DASH);
  const members = Array.isArray(s.members) ? s.members : [];
  setText("members-count", String(members.length));
  setText("min-workers", asInt(s.min_workers));
  setText("max-workers", asInt(s.max_workers));
  renderMembers(members);
  renderRejections(s.rejections);
  renderCurve(s.loss_curve);
}

async function refresh() {
  const conn = $("connection");
  try {
    const response = await fetch("status.json", { cache: "no-store" });
    if (!response.ok) throw new Error("HTTP " + response.status);
    render(await response.json());
    conn.textContent = "live";
    conn.className = "ok";
    setText("updated", new Date().toLocaleTimeString());
  } catch (e) {
    conn.textContent = "no status: " + (e && e.message ? e.message : String(e));
    conn.className = "bad";
  } finally {
    setTimeout(refresh, 1000);
  }
}
refresh();
)JS";

std::string build_page() {
  std::string page;
  page += "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  page += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  page += "<title>zeroth coordinator</title>\n<style>";
  page += kStyle;
  page += "</style>\n</head>\n<body>";
  page += kBody;
  page += "<script>";
  page += kScript;
  page += "</script>\n</body>\n</html>\n";
  return page;
}

}  // namespace

const std::string& HttpStatusServer::page_html() {
  static const std::string page = build_page();
  return page;
}

}  // namespace zeroth
