// The device list's query (search, health chips, tag, site, sort): read from and written to the
// page's URL so a reload keeps it, turned into the API's query string, and the controls that set it.
// The summary (/api/summary) fills the chips' counts and the tag, site and firmware choices: the largest
// SUMMARY_TOP of each (a site or tag not among them is still reached through the URL or the search).
import { HEALTH_LABEL, el } from "./console.js";

export const SORTS = ["severity", "id", "name", "last_seen", "-last_seen"];
const DEFAULT_SORT = "severity"; // worst first
const TAG = /^[a-z0-9][a-z0-9_.:-]{0,31}$/; // the registry's rule (shared/notify_config.py TAG)
const MAX_Q = 128;
const MAX_TAGS = 16;
const MAX_FIRMWARE = 64; // vesper_ingest/firmware.py MAX
const DEBOUNCE_MS = 250;

const $ = (id) => document.getElementById(id);

// The query as the URL had it, with anything the API would refuse left out.
export function fromLocation(search = window.location.search) {
  const p = new URLSearchParams(search);
  const health = (p.get("health") || "").split(",").filter((h, i, all) => Object.hasOwn(HEALTH_LABEL, h) && all.indexOf(h) === i);
  return {
    q: (p.get("q") || "").trim().slice(0, MAX_Q),
    health,
    tags: [...new Set(p.getAll("tag").filter((t) => TAG.test(t)))].slice(0, MAX_TAGS),
    site: (p.get("site") || "").slice(0, MAX_Q),
    firmware: (p.get("firmware") || "").slice(0, MAX_FIRMWARE),
    sort: SORTS.includes(p.get("sort")) ? p.get("sort") : DEFAULT_SORT,
  };
}

export function isFiltered(query) {
  return Boolean(query.q || query.health.length || query.tags.length || query.site || query.firmware);
}

// The API's query string for one page of the list.
export function listParams(query, cursor, limit) {
  const p = new URLSearchParams({ limit: String(limit), sort: query.sort });
  if (query.q) p.set("q", query.q);
  if (query.health.length) p.set("health", query.health.join(","));
  for (const tag of query.tags) p.append("tag", tag);
  if (query.site) p.set("site", query.site);
  if (query.firmware) p.set("firmware", query.firmware);
  if (cursor) p.set("cursor", cursor);
  return p;
}

// Put the query in the address bar (no history entry: a filter is not a page).
export function toLocation(query) {
  const p = new URLSearchParams();
  if (query.q) p.set("q", query.q);
  if (query.health.length) p.set("health", query.health.join(","));
  for (const tag of query.tags) p.append("tag", tag);
  if (query.site) p.set("site", query.site);
  if (query.firmware) p.set("firmware", query.firmware);
  if (query.sort !== DEFAULT_SORT) p.set("sort", query.sort);
  const search = p.toString();
  if (search !== window.location.search.slice(1)) window.history.replaceState(null, "", search ? "?" + search : window.location.pathname);
}

// Wire the controls to `query`; `changed()` runs after each change the operator makes.
export function bindControls(query, changed) {
  const search = $("device-filter");
  const chips = [...document.querySelectorAll("#fleet-summary .chip")];
  const pressChips = () => {
    for (const chip of chips) {
      const h = chip.dataset.filter;
      chip.setAttribute("aria-pressed", String(h ? query.health.includes(h) : query.health.length === 0));
    }
  };
  search.value = query.q;
  $("sort-order").value = query.sort;
  pressChips();

  let debounce = null;
  const searchNow = () => {
    clearTimeout(debounce);
    const q = search.value.trim();
    if (q === query.q) return;
    query.q = q;
    changed();
  };
  search.addEventListener("input", () => {
    clearTimeout(debounce);
    debounce = setTimeout(searchNow, DEBOUNCE_MS);
  });
  search.addEventListener("keydown", (event) => event.key === "Enter" && searchNow());
  for (const chip of chips) {
    chip.addEventListener("click", () => {
      const h = chip.dataset.filter;
      query.health = !h ? [] : query.health.includes(h) ? query.health.filter((x) => x !== h) : [...query.health, h];
      pressChips();
      changed();
    });
  }
  const onSelect = (id, set) =>
    $(id).addEventListener("change", (event) => {
      set(event.target.value);
      changed();
    });
  onSelect("tag-filter", (value) => (query.tags = value ? [value] : []));
  onSelect("site-filter", (value) => (query.site = value));
  if ($("firmware-filter")) onSelect("firmware-filter", (value) => (query.firmware = value));
  onSelect("sort-order", (value) => (query.sort = SORTS.includes(value) ? value : DEFAULT_SORT));
}

// Options "value (n)" for each key of `counts`, and the chosen value even when it counts none.
// The options are rebuilt only when the set of values changes, so an open select is left alone.
// `total`: how many values there are in all; when more than shown, the first option says so.
function fillSelect(select, counts, chosen, total) {
  if (!select) return;
  const shownCount = Object.keys(counts).length;
  const all = select.options[0];
  all.dataset.all ??= all.textContent;
  const more = Number(total) > shownCount ? ` (the ${shownCount} largest of ${Number(total).toLocaleString()})` : "";
  if (all.textContent !== all.dataset.all + more) all.textContent = all.dataset.all + more;
  const count = (value) => (Object.hasOwn(counts, value) ? Number(counts[value]) || 0 : 0);
  const values = Object.keys(counts).sort();
  if (chosen && !Object.hasOwn(counts, chosen)) values.push(chosen);
  const label = (value) => `${value} (${count(value).toLocaleString()})`;
  const options = [...select.options].slice(1); // the first is "all"
  if (options.map((o) => o.value).join("\n") !== values.join("\n")) {
    select.replaceChildren(select.options[0], ...values.map((value) => el("option", { attrs: { value }, text: label(value) })));
  } else {
    options.forEach((option, i) => option.textContent !== label(values[i]) && (option.textContent = label(values[i])));
  }
  select.value = chosen || "";
}

export function showSummary(summary, query) {
  const counts = { all: summary.devices, ...(summary.health || {}) };
  for (const node of document.querySelectorAll("#fleet-summary [data-count]")) {
    node.textContent = (Number(counts[node.dataset.count]) || 0).toLocaleString();
  }
  const top = (name) => (summary[name] && typeof summary[name] === "object" ? summary[name] : {});
  fillSelect($("tag-filter"), top("tags"), query.tags[0] || "", summary.tags_total);
  fillSelect($("site-filter"), top("sites"), query.site, summary.sites_total);
  fillSelect($("firmware-filter"), top("firmware"), query.firmware, summary.firmware_total);
}
