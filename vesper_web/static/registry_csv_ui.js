// The registry as CSV from the list page (§12): export the list's current filter (GET /api/devices
// ?format=csv with the filter and no limit: every matching device, not a page), and import a file
// (POST /api/devices, text/csv) with each refused line shown. Line texts come from the server's
// answer and file names from the operator: textContent only.
import { fromLocation } from "./device_filters.js";
import { toSignIn } from "./http.js";

const $ = (id) => document.getElementById(id);
const count = new Intl.NumberFormat();

// The export's URL for the filter in the page's URL (its sort kept; no limit: the whole filter).
export function exportUrl(query = fromLocation()) {
  const p = new URLSearchParams({ format: "csv", sort: query.sort });
  if (query.q) p.set("q", query.q);
  if (query.health.length) p.set("health", query.health.join(","));
  for (const tag of query.tags) p.append("tag", tag);
  if (query.site) p.set("site", query.site);
  return "/api/devices?" + p.toString();
}

function show(node, state, text) {
  node.dataset.result = state;
  node.textContent = text;
}

async function upload(file) {
  const response = await fetch("/api/devices", {
    method: "POST",
    credentials: "same-origin",
    headers: { "X-Requested-With": "vesper-console", Accept: "application/json", "Content-Type": "text/csv" },
    body: file,
  });
  if (response.status === 401) {
    toSignIn();
    throw new Error("signed out");
  }
  const json = (response.headers.get("Content-Type") || "").includes("json") ? await response.json() : null;
  return { ok: response.ok, body: json };
}

function showLines(list, rejected) {
  list.replaceChildren();
  for (const { line, error } of rejected) {
    const item = document.createElement("li");
    item.textContent = `line ${line}: ${error}`;
    list.append(item);
  }
  list.hidden = rejected.length === 0;
}

function init() {
  const link = $("csv-export");
  const form = $("csv-import");
  if (!link || !form) return;
  const refresh = () => {
    link.href = exportUrl();
  };
  // The filter may have changed since the page loaded: the link follows it at the moment it is used.
  for (const type of ["pointerdown", "focus", "click"]) link.addEventListener(type, refresh);
  refresh();
  const result = $("csv-result");
  const lines = $("csv-lines");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = $("csv-file").files[0];
    if (!file) return show(result, "error", "file: choose a CSV file to import");
    show(result, "", "Importing…");
    lines.hidden = true;
    const { ok, body } = await upload(file);
    if (!ok) return show(result, "error", body && body.error ? body.error : "The import failed; try again.");
    const refused = body.rejected.length;
    show(result, refused ? "error" : "ok",
      `${count.format(body.created)} created, ${count.format(body.updated)} updated, ${count.format(refused)} refused`);
    showLines(lines, body.rejected);
  });
}

init();
