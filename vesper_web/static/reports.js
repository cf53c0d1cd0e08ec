// The Reports page (§13): the fleet's availability per day (reports_chart.js), the table by site or tag
// (a toggle kept in the URL, sortable columns, the same rows as CSV) and the top problems, over a window of
// whole days from the URL (default the last 30 days); times in the zone the page names (history.timezone).
import { deviceUrl, el, getJSON } from "./console.js";
import { duration, pageZone, percent, ratioHealth, windowFromUrl, zonedFormat } from "./history_view.js";
import { drawDays } from "./reports_chart.js";

const root = document.getElementById("reports");
const format = zonedFormat(pageZone());
const $ = (id) => document.getElementById(id);
const GROUPS = ["site", "tag"];
// Each column of the groups table: its row key, how a cell shows it, and its label on a phone's card.
const COLUMNS = [
  ["group", (r) => r.group ?? "(none)", ""],
  ["devices", (r) => String(r.devices), "devices"],
  ["availability", (r) => percent(r.availability), "availability"],
  ["under_99", (r) => String(r.under_99), "under 99 %"],
  ["outages", (r) => String(r.outages), "outages"],
  ["down_s", (r) => duration(r.down_s), "down"],
  ["mtta_s", (r) => duration(r.mtta_s), "MTTA"],
  ["mttr_s", (r) => duration(r.mttr_s), "MTTR"],
];

const count = (n, what) => `${n} ${what}${n === 1 ? "" : "s"}`;

let groupRows = [];
let sort = { key: "availability", ascending: true }; // the worst first

function fail(message) {
  $("reports-error").textContent = message;
  $("reports-error").hidden = false;
  root.dataset.state = "error";
}

async function read(path, query) {
  const { ok, status, body } = await getJSON(`${path}?${query}`);
  if (!ok || !body) throw new Error((body && body.error) || `HTTP ${status}`);
  return body;
}

// --- the chart ---------------------------------------------------------------------------------

async function loadDays(query) {
  const report = await read("/api/reports/availability", withParams(query, { group_by: "day" }));
  const floor = drawDays($("day-chart"), report.rows);
  $("chart-first").textContent = report.rows.length ? report.rows[0].group : "";
  $("chart-last").textContent = report.rows.length ? report.rows[report.rows.length - 1].group : "";
  $("chart-scale").textContent = `scale ${percent(floor)} – 100 %`;
  $("fleet-figure").textContent = `${percent(report.fleet.availability)} over the window, ${report.fleet.under_99} of ${report.fleet.devices} devices under 99 %`;
  $("window-shown").textContent = `${format(report.from)} – ${format(report.to)}`;
  $("daily").dataset.days = String(report.rows.length);
}

// --- the table by site or tag ------------------------------------------------------------------

function compare(a, b) {
  const [x, y] = [a[sort.key], b[sort.key]];
  if (x === y) return 0;
  if (x === null || x === undefined) return 1; // nothing counted: last whichever way
  if (y === null || y === undefined) return -1;
  return (x < y ? -1 : 1) * (sort.ascending ? 1 : -1);
}

function renderGroups() {
  const rows = [...groupRows].sort(compare);
  $("group-rows").replaceChildren(...rows.map((row) => el(
    "tr",
    { className: "group-row", dataset: { group: row.group ?? "", health: ratioHealth(row.availability) } },
    ...COLUMNS.map(([key, shown, label]) => el("td", { className: `c-${key}`, dataset: { label: label || null }, text: shown(row) })),
  )));
  $("groups-empty").textContent = "No devices in this window";
  $("groups-empty").hidden = rows.length > 0;
  for (const th of document.querySelectorAll("#groups thead th")) {
    th.setAttribute("aria-sort", th.dataset.key === sort.key ? (sort.ascending ? "ascending" : "descending") : "none");
  }
}

function sortable() {
  document.querySelectorAll("#groups thead th").forEach((th, i) => {
    const key = COLUMNS[i][0];
    th.dataset.key = key;
    const button = el("button", { className: "sort", attrs: { type: "button" }, text: th.textContent });
    button.addEventListener("click", () => {
      sort = { key, ascending: sort.key === key ? !sort.ascending : key === "group" || key === "availability" };
      renderGroups();
    });
    th.replaceChildren(button);
  });
}

async function loadGroups(query, by) {
  for (const name of GROUPS) $(`by-${name}`).setAttribute("aria-pressed", String(name === by));
  $("groups-csv").href = `/api/reports/availability?${withParams(query, { group_by: by, format: "csv" })}`;
  $("groups-csv").setAttribute("download", `vesper-availability-${by}.csv`);
  const report = await read("/api/reports/availability", withParams(query, { group_by: by }));
  groupRows = report.rows;
  renderGroups();
}

// --- the top problems --------------------------------------------------------------------------

async function loadProblems(query) {
  const problems = await read("/api/reports/problems", query);
  $("subsystem-rows").replaceChildren(...problems.subsystems.map((s) => el(
    "tr", { className: "problem-row", dataset: { subsystem: s.subsystem } },
    el("td", { className: "c-subsystem mono", text: s.subsystem }),
    el("td", { className: "c-incidents", text: count(s.incidents, "incident") }),
    el("td", { className: "c-devices", text: count(s.devices, "device") }),
    el("td", { className: "c-problem", dataset: { label: "in a problem" }, text: duration(s.problem_s) }),
  )));
  $("device-rows").replaceChildren(...problems.devices.map((d) => el(
    "tr", { className: "problem-row", dataset: { device: d.device_id } },
    el("td", { className: "c-source" }, el("a", { className: "mono", attrs: { href: `${deviceUrl(d.device_id)}/history` }, text: d.name || d.device_id })),
    el("td", { className: "c-site", text: d.site ?? "" }),
    el("td", { className: "c-incidents", text: count(d.incidents, "incident") }),
    el("td", { className: "c-outages", text: count(d.outages, "outage") }),
    el("td", { className: "c-problem", dataset: { label: "in a problem" }, text: duration(d.problem_s) }),
  )));
  for (const [rows, empty] of [[problems.subsystems, "subsystems-empty"], [problems.devices, "devices-empty"]]) {
    $(empty).textContent = "No problems in this window";
    $(empty).hidden = rows.length > 0;
  }
}

// --- the page ----------------------------------------------------------------------------------

function withParams(query, extra) {
  const params = new URLSearchParams(query);
  for (const [key, value] of Object.entries(extra)) params.set(key, value);
  return params.toString();
}

function chosenGroup(params) {
  const by = params.get("by");
  return GROUPS.includes(by) ? by : "site";
}

async function start() {
  const { query, params, error } = windowFromUrl($("window-from"), $("window-to"));
  if (error) return fail(error);
  let by = chosenGroup(params);
  $("window-by").value = by;
  sortable();
  for (const name of GROUPS) {
    $(`by-${name}`).addEventListener("click", () => {
      by = name;
      $("window-by").value = name;
      const url = new URL(window.location.href);
      url.searchParams.set("by", name);
      window.history.replaceState(null, "", url);
      loadGroups(query, by).catch((err) => fail(`Report unavailable: ${err.message}`));
    });
  }
  await Promise.all([loadDays(query), loadGroups(query, by), loadProblems(query)]);
  root.dataset.state = "shown";
}

start().catch((err) => fail(`Report unavailable: ${err.message}`));
