// The meterstack dashboard: a page per hash route, built on the REST API (/api/v1).
// No build step; charts with plotly.js (served from the plotly Python package).
"use strict";

const API = "/api/v1";
const REFRESH_MS = 2000;
const main = document.getElementById("main");
let refreshTimer = null;

// ------------------------------------------------------------------ helpers
function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// Replace a node's children, leaving out null, undefined and false (conditional parts).
function fill(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined &&
                                                        c !== false));
}

function showError(message) {
  const box = document.getElementById("error");
  box.textContent = message;
  box.hidden = !message;
}

function token() { return sessionStorage.getItem("meterstack.token"); }

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (token()) headers.Authorization = "Bearer " + token();
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(options.json);
  }
  const response = await fetch(API + path, { method: options.method || "GET", headers,
                                             body: options.body });
  if (response.status === 401 && path !== "/auth/token") {
    sessionStorage.removeItem("meterstack.token");
    location.hash = "#/login";
    throw new Error("please log in");
  }
  if (response.status === 204) return null;
  const body = await response.json();
  if (!response.ok) {
    // RFC 9457 problem document
    const error = new Error(body.detail || body.title || ("HTTP " + response.status));
    error.problem = body;
    error.status = response.status;
    throw error;
  }
  return body;
}

function table(columns, rows, rowAttrs) {
  return h("table", {},
    h("thead", {}, h("tr", {}, columns.map(([label]) => h("th", {}, label)))),
    h("tbody", {}, rows.map((row) => h("tr", rowAttrs ? rowAttrs(row) : {},
      columns.map(([, cell]) => h("td", {}, cell(row)))))));
}

function localTime(iso) { return iso ? new Date(iso).toLocaleString() : ""; }

const COLOURS = ["#1f6feb", "#d1242f", "#2da44e"];

// A line chart with plotly.js (served at /vendor/plotly.min.js from the plotly package):
// x values in epoch seconds (or plain numbers with time: false), one line per series.
function chart(title, labels, series, width = 900) {
  const holder = h("div", { class: "chart", "data-chart": title });
  const isTime = labels.time !== false;
  const xs = isTime ? labels.values.map((x) => new Date(x * 1000)) : labels.values;
  const traces = series.map((s, i) => ({
    x: xs, y: s.values, name: s.label, type: "scatter", mode: "lines",
    line: { color: COLOURS[i % COLOURS.length], width: 2 },
    fill: i === 0 ? "tozeroy" : "none",
  }));
  const layout = {
    title: { text: title, font: { size: 14 } }, width, height: 260,
    margin: { l: 56, r: 12, t: 36, b: 40 },
    yaxis: { title: { text: series[0] ? series[0].unit || "" : "" }, rangemode: "tozero" },
    xaxis: { type: isTime ? "date" : "linear" }, showlegend: series.length > 1,
  };
  Plotly.newPlot(holder, traces, layout, { displayModeBar: false, responsive: false });
  return holder;
}

function epoch(iso) { return Date.parse(iso) / 1000; }

function startRefresh(fn) {
  stopRefresh();
  refreshTimer = setInterval(() => fn().catch((e) => showError(e.message)), REFRESH_MS);
}

function stopRefresh() {
  if (refreshTimer !== null) clearInterval(refreshTimer);
  refreshTimer = null;
}

function requestId() {
  if (window.crypto && crypto.randomUUID) return "web-" + crypto.randomUUID();
  return "web-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2);
}

// ------------------------------------------------------------------ pages
async function loginPage() {
  document.getElementById("nav").hidden = true;
  const form = h("form", { id: "login-form" },
    h("h2", {}, "Log in"),
    h("label", {}, "User ", h("input", { name: "username", id: "username", required: true,
                                         autocomplete: "username" })),
    h("label", {}, "Password ", h("input", { name: "password", id: "password",
                                             type: "password", required: true,
                                             autocomplete: "current-password" })),
    h("button", { type: "submit", id: "login" }, "Log in"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const answer = await api("/auth/token", {
        method: "POST", body: new URLSearchParams(new FormData(form)),
      });
      sessionStorage.setItem("meterstack.token", answer.access_token);
      showError("");
      const me = await api("/auth/me");
      if (me.role === "vendor") location.hash = "#/vend";
      else if (me.role === "customer") location.hash = "#/mine";
      else location.hash = "#/fleet";
    } catch (e) { showError(e.message); }
  });
  fill(main, h("section", {}, form));
}

async function fleetPage() {
  const cards = h("div", { class: "cards", id: "fleet-cards" });
  const meters = h("section", {}, h("h2", {}, "Meters"), h("div", { id: "meters" }));
  const alarms = h("section", {}, h("h2", {}, "Alarms"), h("div", { id: "alarms" }));
  fill(main, h("h2", {}, "Fleet"), cards, meters, alarms);

  async function draw() {
    const [overview, page, alarmPage] = await Promise.all([
      api("/fleet/overview"), api("/meters?page_size=100"), api("/alarms?page_size=50"),
    ]);
    const byStatus = overview.meters.by_status;
    fill(cards,
      h("div", { class: "card" }, "Meters", h("b", {}, overview.meters.total)),
      h("div", { class: "card" }, "Reporting (24 h)", h("b", {}, overview.reporting_meters)),
      h("div", { class: "card" }, "Open alarms",
        h("b", { id: "open-alarms" }, overview.alarms.open)),
      h("div", { class: "card" }, "Energy (24 h)", h("b", {}, overview.energy_kwh + " kWh")),
      h("div", { class: "card" }, "Commands",
        h("b", {}, Object.entries(overview.commands).map(([k, v]) => `${k} ${v}`).join(", ")
          || "none")),
      h("div", { class: "card" }, "By status",
        h("b", {}, Object.entries(byStatus).map(([k, v]) => `${k} ${v}`).join(", ") || "none")));
    fill(document.getElementById("meters"), table([
      ["Serial", (m) => h("a", { href: "#/meter/" + encodeURIComponent(m.serial) }, m.serial)],
      ["Status", (m) => m.status],
      ["Prepaid", (m) => m.prepaid_mode || ""],
      ["STS", (m) => (m.sts ? "yes" : "")],
      ["Pages", (m) => [
        h("a", { href: "#/habits/" + encodeURIComponent(m.serial) }, "habits"), " ",
        h("a", { href: "#/pq/" + encodeURIComponent(m.serial) }, "power quality")]],
    ], page.items), h("p", {}, `${page.total} meters`));
    fill(document.getElementById("alarms"), alarmTable(alarmPage.items, true));
  }
  await draw();
  startRefresh(draw);
}

function alarmTable(items, withMeter) {
  if (!items.length) return h("p", {}, "No alarms.");
  const columns = [
    ["Raised", (a) => localTime(a.raised_at)],
    ["Code", (a) => a.code],
    ["Detail", (a) => a.detail],
    ["Acknowledged", (a) => a.acknowledged_by || ""],
  ];
  if (withMeter) {
    columns.splice(1, 0, ["Meter", (a) => h("a", { href: "#/meter/" + a.meter }, a.meter)]);
  }
  return table(columns, items, (a) => ({ class: "alarm", "data-alarm-code": a.code }));
}

async function meterPage(serial) {
  const me = await api("/auth/me");
  const meter = await api("/meters/" + encodeURIComponent(serial));
  const credit = h("section", { id: "credit" }, h("h2", {}, "Credit"));
  const chartsBox = h("section", {}, h("h2", {}, "Consumption"));
  const alarms = h("section", {}, h("h2", {}, "Alarms"), h("div", { id: "meter-alarms" }));
  const events = h("section", {}, h("h2", {}, "Events"), h("div", { id: "meter-events" }));
  const relay = h("section", { id: "relay" }, h("h2", {}, "Relay"));
  if (me.role === "admin" || me.role === "operator") {
    const status = h("p", { id: "command-status" });
    const send = (name) => async () => {
      try {
        const out = await api(`/meters/${encodeURIComponent(serial)}/commands`,
                              { method: "POST", json: { name } });
        status.textContent = `${out.kind}: ${out.status} (command ${out.id})`;
      } catch (e) { showError(e.message); }
    };
    relay.append(
      h("button", { type: "button", id: "disconnect", onclick: send("remote_disconnect") },
        "Disconnect"), " ",
      h("button", { type: "button", id: "reconnect", onclick: send("remote_reconnect") },
        "Reconnect"), " ",
      h("button", { type: "button", onclick: send("read_registers") }, "Read registers"),
      status);
  } else {
    relay.append(h("p", {}, "Relay control is for operators."));
  }
  fill(main,
    h("h2", {}, "Meter ", h("span", { id: "meter-serial" }, meter.serial)),
    h("p", {}, `status ${meter.status}, ${meter.timezone}, prepaid ${meter.prepaid_mode || "no"}`,
      " · ", h("a", { href: "#/habits/" + serial }, "habits"),
      " · ", h("a", { href: "#/pq/" + serial }, "power quality")),
    credit, chartsBox, relay, alarms, events);

  const q = encodeURIComponent(serial);
  const [half, daily, monthly] = await Promise.all([
    api(`/meters/${q}/consumption?resolution=30min`),
    api(`/meters/${q}/consumption?resolution=day`),
    api(`/meters/${q}/consumption?resolution=month`),
  ]);
  chartsBox.append(
    chart("30-minute (kWh)", { values: half.series.map((p) => epoch(p.interval_end)) },
          [{ label: "kWh", unit: "kWh", values: half.series.map((p) => p.kwh) }]),
    chart("Daily (kWh)", { values: daily.series.map((p) => epoch(p.period)) },
          [{ label: "kWh", unit: "kWh", values: daily.series.map((p) => p.kwh) }]),
    chart("Monthly (kWh)", { values: monthly.series.map((p) => epoch(p.period + "-01")) },
          [{ label: "kWh", unit: "kWh", values: monthly.series.map((p) => p.kwh) }]));

  async function draw() {
    const c = await api(`/meters/${q}/credit`);
    const rows = [];
    if (c.mode === "account") {
      rows.push(h("div", { class: "card" }, "Balance",
        h("b", { id: "credit-balance" }, `${c.balance} ${c.currency}`)));
      rows.push(h("div", { class: "card" }, "Debt", h("b", {}, `${c.debt} ${c.currency}`)));
      rows.push(h("div", { class: "card" }, "Supply", h("b", { id: "supply" }, c.supply)));
    } else if (c.last_readback) {
      const r = c.last_readback;
      rows.push(h("div", { class: "card" }, "Credit on the meter",
        h("b", { id: "credit-balance" }, `${r.remaining_credit} ${r.credit_unit}`),
        `read ${localTime(r.read_at)}`));
    }
    const purchased = c.recent_vends.filter((v) => v.status === "completed");
    rows.push(h("div", { class: "card" }, "Recent purchases",
      h("b", { id: "credit-purchased" }, purchased.length)));
    fill(credit, h("h2", {}, "Credit"), h("div", { class: "cards" }, rows),
      ...(c.recent_vends.length ? [table([
        ["When", (v) => localTime(v.vended_at)], ["Amount", (v) => `${v.amount} ${v.currency}`],
        ["kWh", (v) => v.kwh || ""], ["Token", (v) => h("span", { class: "token" }, v.token || "")],
        ["Status", (v) => v.status],
      ], c.recent_vends)] : []));
    const ev = await api(`/meters/${q}/events?page_size=20`);
    fill(document.getElementById("meter-events"), ev.items.length ? table([
      ["At", (e) => localTime(e.at)], ["Log", (e) => e.log], ["Code", (e) => e.code],
      ["Detail", (e) => e.detail],
    ], ev.items) : h("p", {}, "No events."));
    if (me.role !== "vendor") {
      const al = await api(`/alarms?meter=${q}&page_size=20`);
      fill(document.getElementById("meter-alarms"), alarmTable(al.items, false));
    }
  }
  await draw();
  startRefresh(draw);
}

async function minePage() {
  const page = await api("/meters?page_size=100");
  fill(main, h("section", {}, h("h2", {}, "My meters"), table([
    ["Serial", (m) => h("a", { href: "#/meter/" + m.serial }, m.serial)],
    ["Prepaid", (m) => m.prepaid_mode || ""],
    ["Habits", (m) => h("a", { href: "#/habits/" + m.serial }, "my habits")],
  ], page.items)));
}

async function habitsPage(serial) {
  const q = encodeURIComponent(serial);
  const habits = await api(`/meters/${q}/habits?days=30`);
  const peers = habits.similar_homes;
  const hours = [...Array(24).keys()];
  const perDay = habits.by_hour_kwh.map(() => peers.median_kwh_per_day / 24);
  fill(main,
    h("h2", {}, "Habits of ", serial),
    h("div", { class: "cards" },
      h("div", { class: "card" }, "Use per day", h("b", { id: "kwh-per-day" },
        habits.kwh_per_day.toFixed(2) + " kWh")),
      h("div", { class: "card" }, "Similar homes (median)", h("b", {},
        peers.median_kwh_per_day === null ? "n/a" : peers.median_kwh_per_day.toFixed(2) + " kWh")),
      h("div", { class: "card" }, "Percentile among them", h("b", {},
        peers.percentile === null ? "n/a" : peers.percentile + " %")),
      h("div", { class: "card" }, "Peak hour", h("b", {}, habits.peak_hour ?? "n/a"))),
    h("section", {},
      chart("Use by hour of day (kWh)", { values: hours, time: false }, [
        { label: "this home", unit: "kWh", values: habits.by_hour_kwh },
        { label: "similar homes, flat", values: perDay },
      ]),
      chart("Use by weekday, Monday first (kWh)", { values: [0, 1, 2, 3, 4, 5, 6], time: false },
            [{ label: "this home", unit: "kWh", values: habits.by_weekday_kwh }])));
}

async function powerQualityPage(serial) {
  const q = encodeURIComponent(serial);
  const pq = await api(`/meters/${q}/power-quality`);
  const s = pq.voltage_summary;
  fill(main,
    h("h2", {}, "Power quality of ", serial),
    h("div", { class: "cards" },
      h("div", { class: "card" }, "Voltage min", h("b", {}, s.min ?? "n/a")),
      h("div", { class: "card" }, "Voltage mean", h("b", {}, s.mean ?? "n/a")),
      h("div", { class: "card" }, "Voltage max", h("b", {}, s.max ?? "n/a"))),
    h("section", {}, pq.voltage.length
      ? chart("Average voltage (V)", { values: pq.voltage.map((p) => epoch(p.interval_end)) },
              [{ label: "V", unit: "V", values: pq.voltage.map((p) => p.v) }])
      : h("p", {}, "No voltage intervals in the last 7 days.")),
    h("section", {}, h("h2", {}, "Power-quality events"), pq.events.length ? table([
      ["At", (e) => localTime(e.at)], ["Code", (e) => e.code], ["Log", (e) => e.log],
      ["Detail", (e) => e.detail],
    ], pq.events) : h("p", {}, "None.")));
}

async function vendPage() {
  const me = await api("/auth/me");
  const staff = me.role === "admin" || me.role === "operator";
  const vendorSelect = h("select", { name: "vendor_id", id: "vendor-id" });
  if (staff) {
    const vendors = await api("/vendors?page_size=100");
    vendors.items.forEach((v) => vendorSelect.append(
      h("option", { value: v.id }, `${v.name} (float ${v.float_balance} ${v.currency})`)));
  }
  const result = h("div", { id: "vend-result" });
  const form = h("form", { id: "vend-form" },
    h("label", {}, "Meter ", h("input", { name: "meter", id: "vend-meter", required: true })),
    h("label", {}, "Amount ", h("input", { name: "amount", id: "vend-amount",
                                           inputmode: "decimal", placeholder: "e.g. 50.00" })),
    h("label", {}, "or kWh ", h("input", { name: "kwh", id: "vend-kwh", inputmode: "decimal" })),
    staff ? h("label", {}, "Vendor ", vendorSelect) : null,
    h("button", { type: "button", id: "quote" }, "Quote"), " ",
    h("button", { type: "submit", id: "vend" }, "Vend"));
  let pendingId = requestId();  // kept until a vend succeeds, so a retry is idempotent

  function body(withId) {
    const data = new FormData(form);
    const out = { meter: data.get("meter").trim() };
    if (data.get("amount")) out.amount = data.get("amount").trim();
    if (data.get("kwh")) out.kwh = data.get("kwh").trim();
    if (staff) out.vendor_id = Number(data.get("vendor_id"));
    if (withId) out.request_id = pendingId;
    return out;
  }

  function receipt(lines) {
    return table([["Line", (l) => l.description || l.component],
                  ["kWh", (l) => l.kwh ?? ""], ["Amount", (l) => l.amount ?? ""]], lines || []);
  }

  form.querySelector("#quote").addEventListener("click", async () => {
    try {
      const { vendor_id: _unused, ...quote } = body(false);
      const price = await api("/vend-quotes", { method: "POST", json: quote });
      fill(result, h("h3", {}, "Quote"), h("pre", {}, JSON.stringify(price, null, 2)));
      showError("");
    } catch (e) { showError(e.message); }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const vend = await api("/vends", { method: "POST", json: body(true) });
      pendingId = requestId();
      showError("");
      const r = vend.receipt || {};
      fill(result,
        h("h3", {}, `Vend ${vend.reference}`),
        vend.token ? h("p", {}, "Token ", h("span", { class: "token", id: "vend-token" },
                                           vend.token))
                   : h("p", { id: "vend-token" }, "Credited to the account (smart prepay)."),
        h("p", {}, `${vend.amount} ${vend.currency}`, vend.kwh ? ` for ${vend.kwh} kWh` : "",
          ` · `, h("a", { href: "#/meter/" + vend.meter, id: "vend-meter-link" },
                   "meter " + vend.meter)),
        Array.isArray(r.lines) ? receipt(r.lines) : h("pre", {}, JSON.stringify(r, null, 2)));
    } catch (e) { showError(e.message); }
  });
  fill(main, h("section", {}, h("h2", {}, "Vending"), form), h("section", {}, result));
}

async function tariffPage() {
  const blocks = await api("/tariff-blocks");
  const examples = {
    flat_energy: { rate: "0.25" },
    inclining_blocks: { limits: [50, 350], rates: ["1.10", "1.45", "2.10"] },
    time_of_use: { periods: { peak: { rate: "0.40", hours: ["16-21"] },
                              offpeak: { rate: "0.15" } }, default: "offpeak" },
    free_basic_electricity: { kwh: "50" },
    fixed_monthly: { amount: "10.00", name: "service charge" },
    fixed_daily: { amount: "0.50", name: "network charge" },
    percent_tax: { percent: "15", name: "VAT" },
    flat_demand: { rate: "12.00", window_min: 30 },
  };
  const composition = h("ol", { class: "composition", id: "composition" });
  const preview = h("pre", { id: "tariff-preview" });

  function addBlock(kind) {
    const params = h("textarea", { rows: 3, cols: 60, "data-kind": kind },
                     JSON.stringify(examples[kind] || {}));
    composition.append(h("li", { "data-kind": kind }, h("strong", {}, kind), " ",
      h("button", { type: "button", onclick: (e) => e.target.closest("li").remove() }, "remove"),
      h("br"), params));
  }

  const palette = h("ul", { class: "palette", id: "palette" }, blocks.map((b) =>
    h("li", { draggable: "true", "data-kind": b.kind,
              ondragstart: (e) => e.dataTransfer.setData("text/plain", b.kind) },
      h("strong", {}, b.kind), ` — ${b.description} `,
      h("button", { type: "button", onclick: () => addBlock(b.kind) }, "add"))));
  composition.addEventListener("dragover", (e) => { e.preventDefault();
                                                    composition.classList.add("over"); });
  composition.addEventListener("dragleave", () => composition.classList.remove("over"));
  composition.addEventListener("drop", (e) => {
    e.preventDefault();
    composition.classList.remove("over");
    const kind = e.dataTransfer.getData("text/plain");
    if (kind) addBlock(kind);
  });

  const form = h("form", { id: "tariff-form" },
    h("label", {}, "Name ", h("input", { name: "name", required: true, value: "my-tariff" })),
    h("label", {}, "Currency ", h("input", { name: "currency", value: "ZAR", size: 3 })),
    h("label", {}, "Time zone ", h("input", { name: "timezone", value: "UTC" })),
    h("button", { type: "submit", value: "preview" }, "Compose"), " ",
    h("button", { type: "submit", value: "save", id: "tariff-save" }, "Save"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    try {
      const chosen = [...composition.querySelectorAll("textarea")].map((t, i) => {
        try { return { kind: t.dataset.kind, params: JSON.parse(t.value || "{}") }; }
        catch { throw new Error(`block ${i + 1} (${t.dataset.kind}): parameters are not JSON`); }
      });
      const out = await api("/tariff-compositions", { method: "POST", json: {
        name: data.get("name"), currency: data.get("currency"), timezone: data.get("timezone"),
        blocks: chosen, save: event.submitter && event.submitter.value === "save" } });
      preview.textContent = JSON.stringify(out, null, 2);
      showError("");
    } catch (e) { showError(e.message); }
  });
  fill(main,
    h("h2", {}, "Tariff builder"),
    h("section", {}, h("h3", {}, "Blocks (drag into the tariff, or press add)"), palette),
    h("section", {}, h("h3", {}, "This tariff"), composition, form, preview));
}

// ------------------------------------------------------------------ grid analytics
// Outages with IEEE 1366 indices, the theft inspection list, EN 50160 compliance and
// transformer loading, from the latest report of POST /analytics/run.
function fixed(value, digits) {
  return value === null || value === undefined ? "-" : Number(value).toFixed(digits);
}

function percent(share) {
  return share === null || share === undefined ? "-" : (100 * share).toFixed(1) + " %";
}

function barChart(title, labels, values, unit, width = 900) {
  const holder = h("div", { class: "chart", "data-chart": title });
  Plotly.newPlot(holder, [{ x: labels, y: values, type: "bar",
                            marker: { color: COLOURS[1] } }], {
    title: { text: title, font: { size: 14 } }, width, height: 260,
    margin: { l: 56, r: 12, t: 36, b: 80 }, yaxis: { title: { text: unit } },
  }, { displayModeBar: false, responsive: false });
  return holder;
}

async function gridPage() {
  const start = h("input", { type: "date", id: "grid-from" });
  const end = h("input", { type: "date", id: "grid-to" });
  const status = h("p", { id: "grid-status" });
  const run = h("button", { type: "button", id: "run-analytics" }, "Run analytics");
  const body = h("div", { id: "grid-report" });
  fill(main,
    h("h2", {}, "Grid"),
    h("section", {},
      h("label", {}, "From ", start), " ", h("label", {}, "To ", end), " ", run,
      h("small", {}, " (empty: the last 28 days)"), status),
    body);

  async function section(name) {
    const page = await api(`/analytics/report/${name}?page_size=100`);
    const more = page.total > page.items.length
      ? h("p", {}, `first ${page.items.length} of ${page.total}`) : null;
    return [page.items, more];
  }

  async function draw() {
    let report;
    try {
      report = await api("/analytics/report?preview=0");
    } catch (e) {
      if (e.status === 404) {
        fill(body, h("p", { id: "grid-empty" }, e.message));
        return;
      }
      throw e;
    }
    const [[outages, moreOutages], [suspects, moreSuspects], [failing, moreFailing],
           [overloaded, moreOverloaded], [balance]] = await Promise.all(
      ["outages", "inspection", "non-compliant", "overloaded", "energy-balance"].map(section));
    const ix = report.indices;
    const p = report.period;
    status.textContent = `Report for ${localTime(p.start)} to ${localTime(p.end)}` +
      (report.generated_at ? `, run ${localTime(report.generated_at)}` : "");
    const cards = h("div", { class: "cards", id: "grid-cards" },
      h("div", { class: "card" }, "SAIFI", h("b", { id: "saifi" }, fixed(ix.saifi, 4))),
      h("div", { class: "card" }, "SAIDI", h("b", { id: "saidi" }, fixed(ix.saidi_min, 1) + " min")),
      h("div", { class: "card" }, "CAIDI", h("b", { id: "caidi" }, fixed(ix.caidi_min, 1) + " min")),
      h("div", { class: "card" }, "MAIFI", h("b", { id: "maifi" }, fixed(ix.maifi, 4))),
      h("div", { class: "card" }, "Outages", h("b", {}, report.totals.outages)),
      h("div", { class: "card" }, "Suspects", h("b", {}, report.totals.inspection)));
    const outageTable = outages.length ? table([
      ["#", (o) => o.id],
      ["Level", (o) => o.level],
      ["Transformer", (o) => o.transformer],
      ["Feeder", (o) => o.feeder + (o.feeder_event ? ` (feeder event ${o.feeder_event})` : "")],
      ["Start", (o) => localTime(o.start)],
      ["Restored", (o) => (o.open ? "open" : localTime(o.end))],
      ["Customers", (o) => o.customers],
      ["Customer-minutes", (o) => fixed(o.customer_minutes, 0)],
    ], outages, (o) => ({ "data-transformer": o.transformer })) : h("p", {}, "No outages.");
    const suspectTable = suspects.length ? table([
      ["Rank", (s) => s.rank],
      ["Meter", (s) => s.serial],
      ["Transformer", (s) => s.transformer],
      ["Score", (s) => fixed(s.score, 2)],
      ["Unrecorded", (s) => percent(s.stolen_share)],
      ["Reasons", (s) => h("ul", { class: "reasons" }, s.reasons.map((r) => h("li", {}, r)))],
    ], suspects, (s) => ({ "data-serial": s.serial })) : h("p", {}, "No suspects.");
    const pqTable = failing.length ? table([
      ["Meter", (m) => m.serial],
      ["Transformer", (m) => m.transformer],
      ["Weeks failed", (m) => m.weeks_failed],
      ["Worst week from", (m) => localTime(m.worst_week_start)],
      ["Within +/-10 %", (m) => percent(m.within_10_pct)],
      ["Min / max V", (m) => `${fixed(m.min_v, 1)} / ${fixed(m.max_v, 1)}`],
    ], failing, (m) => ({ "data-serial": m.serial }))
      : h("p", {}, report.pq.weeks ? "Every meter complies." : "Needs a complete week of data.");
    const overTable = overloaded.length ? table([
      ["Transformer", (t) => t.transformer],
      ["Feeder", (t) => t.feeder],
      ["Rating", (t) => fixed(t.rating_kva, 0) + " kVA"],
      ["Peak", (t) => fixed(t.peak_pct, 0) + " %"],
      ["Hours over (worst week)", (t) => fixed(t.hours_over, 1)],
    ], overloaded, (t) => ({ "data-transformer": t.transformer }))
      : h("p", {}, "No overloaded transformers.");
    const top = balance.slice(0, 30);
    fill(body,
      cards,
      h("section", {}, h("h3", {}, "Outages"), h("div", { id: "grid-outages" }, outageTable),
        moreOutages),
      h("section", {}, h("h3", {}, "Inspection list"),
        h("div", { id: "grid-inspection" }, suspectTable), moreSuspects),
      h("section", {}, h("h3", {}, "Energy balance"),
        top.length ? barChart("Non-technical loss by transformer", top.map((b) => b.transformer),
                              top.map((b) => 100 * (b.ntl_share || 0)), "% of delivered")
          : h("p", {}, "No transformer has a check meter.")),
      h("section", {}, h("h3", {}, "EN 50160 voltage non-compliance"),
        h("div", { id: "grid-pq" }, pqTable), moreFailing),
      h("section", {}, h("h3", {}, "Overloaded transformers"),
        h("div", { id: "grid-overloaded" }, overTable), moreOverloaded),
      h("section", { id: "grid-notes", hidden: !report.notes.length }, h("h3", {}, "Notes"),
        h("ul", {}, report.notes.map((n) => h("li", {}, n)))));
  }

  run.addEventListener("click", async () => {
    const period = {};
    if (start.value) period.start = start.value + "T00:00:00Z";
    if (end.value) period.end = end.value + "T00:00:00Z";
    run.disabled = true;
    status.textContent = "Running...";
    try {
      await api("/analytics/run", { method: "POST", json: period });
      showError("");
      await draw();
    } catch (e) {
      status.textContent = "";
      showError(e.message);
    } finally {
      run.disabled = false;
    }
  });
  await draw();
}

// ------------------------------------------------------------------ router
async function route() {
  stopRefresh();
  const [, page, arg] = (location.hash || "#/").split("/");
  if (!token() && page !== "login") { location.hash = "#/login"; return; }
  if (page === "login") { await loginPage(); return; }
  const nav = document.getElementById("nav");
  nav.hidden = false;
  try {
    const me = await api("/auth/me");
    document.getElementById("who").textContent = `${me.name} (${me.role})`;
    const staff = me.role === "admin" || me.role === "operator";
    document.getElementById("nav-grid").hidden = !staff;
    const serial = arg ? decodeURIComponent(arg) : "";
    const pages = {
      fleet: fleetPage, vend: vendPage, tariffs: tariffPage, mine: minePage,
      meter: () => meterPage(serial), habits: () => habitsPage(serial),
      pq: () => powerQualityPage(serial), grid: gridPage,
    };
    const fallback = me.role === "vendor" ? vendPage
      : me.role === "customer" ? minePage : fleetPage;
    await (pages[page] || fallback)();
    showError("");
  } catch (e) { showError(e.message); }
}

document.getElementById("logout").addEventListener("click", () => {
  sessionStorage.removeItem("meterstack.token");
  location.hash = "#/login";
});
window.addEventListener("hashchange", route);
route();
