// History's pieces shared by the device page, its history page and the Reports page (§13): times in the
// configured zone (history.timezone, named on each page), percentages, durations, and inline SVG drawn
// with DOM APIs (no library, nothing from another origin, nothing the CSP refuses).
import { el } from "./console.js";

const SVG_NS = "http://www.w3.org/2000/svg";

// The zone the page names (data-zone on <main>'s first element that has one), else UTC.
export function pageZone() {
  const node = document.querySelector("[data-zone]");
  return (node && node.dataset.zone) || "UTC";
}

// An instant as the console shows times (the browser's locale), in the configured zone, with the day.
export function zonedFormat(zone) {
  const fmt = new Intl.DateTimeFormat(undefined, {
    timeZone: zone, year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  });
  return (iso) => {
    if (!iso) return "–";
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? "–" : fmt.format(d);
  };
}

// A <time> showing an instant in the zone (its full ISO text as the title and datetime).
export function zonedTime(iso, format, fallback = "–") {
  const node = el("time", { text: iso ? format(iso) : fallback });
  if (iso) {
    node.setAttribute("datetime", iso);
    node.title = iso;
  }
  return node;
}

// A ratio as "99.93 %" (two decimals below 100 %, "100 %" when whole), "–" when nothing was counted.
export function percent(ratio) {
  if (ratio === null || ratio === undefined || !Number.isFinite(ratio)) return "–";
  if (ratio >= 1) return "100 %";
  return `${(Math.floor(ratio * 10000) / 100).toFixed(2)} %`;
}

// The health a ratio earns: ok at 99.9 % or more, warning from 99 %, critical under it (the < 99 % count's line).
export function ratioHealth(ratio) {
  if (ratio === null || ratio === undefined) return "unknown";
  return ratio >= 0.999 ? "ok" : ratio >= 0.99 ? "warning" : "critical";
}

// Seconds as "2 d 3 h", "3 h 12 min", "4 min 5 s", "12 s"; "–" for nothing.
export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  const [d, h, m] = [Math.floor(s / 86400), Math.floor((s % 86400) / 3600), Math.floor((s % 3600) / 60)];
  if (d) return h ? `${d} d ${h} h` : `${d} d`;
  if (h) return m ? `${h} h ${m} min` : `${h} h`;
  if (m) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
  return `${s} s`;
}

// An SVG element with its attributes (presentation attributes, never a style attribute: the CSP).
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) if (value !== null && value !== undefined) node.setAttribute(key, String(value));
  for (const child of children) if (child) node.append(child);
  return node;
}

// A <title> child: the hover text of an SVG shape (a text node: device strings stay strings).
export function svgTitle(text) {
  const node = svg("title");
  node.textContent = text;
  return node;
}

// The episode's colour class: an outage, or an incident by its worst state.
export function episodeClass(episode) {
  if (episode.kind === "outage") return "ep-outage";
  return episode.worst === "WARNING" ? "ep-warning" : "ep-critical";
}

// An episode in one line: "Outage", "Incident Audio", with its worst.
export function episodeLabel(episode) {
  const what = episode.kind === "outage" ? "Outage" : episode.kind === "blind" ? "Not watched" : `Incident ${episode.subsystem ?? ""}`;
  return `${what} (${episode.worst})`;
}

// The strip: the window [start, end) as a bar of WIDTH units, each episode a coloured span (outages on the top
// row, incidents below); hover shows its start, end and worst.
export function drawStrip(node, episodes, startMs, endMs, format) {
  const WIDTH = 1000;
  const scale = (ms) => Math.min(WIDTH, Math.max(0, ((ms - startMs) / (endMs - startMs)) * WIDTH));
  node.replaceChildren(svg("rect", { class: "strip-bg", x: 0, y: 0, width: WIDTH, height: 24 }));
  for (const episode of episodes) {
    if (episode.kind !== "outage" && episode.kind !== "incident") continue;
    const from = scale(Date.parse(episode.started));
    const to = scale(episode.ended ? Date.parse(episode.ended) : endMs);
    const until = episode.ended ? format(episode.ended) : "still open";
    const title = `${episodeLabel(episode)}: ${format(episode.started)} – ${until}`;
    node.append(svg("rect", {
      class: `strip-span ${episodeClass(episode)}`, x: from.toFixed(2), y: episode.kind === "outage" ? 0 : 12,
      width: Math.max(2, to - from).toFixed(2), height: 12, "data-kind": episode.kind,
    }, svgTitle(title)));
  }
  node.setAttribute("viewBox", `0 0 ${WIDTH} 24`);
  node.setAttribute("preserveAspectRatio", "none");
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;

// The day after a YYYY-MM-DD (calendar arithmetic: no zone involved).
function nextDay(day) {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + 1);
  return d.toISOString().slice(0, 10);
}

// The page's window of whole days from its URL (from, to: YYYY-MM-DD, to included) as the API's query (from's
// midnight to the midnight after to's day, in the zone), and the form's inputs filled; {error} when it is not one.
export function windowFromUrl(fromInput, toInput) {
  const params = new URLSearchParams(window.location.search);
  const [from, to] = [params.get("from") || "", params.get("to") || ""];
  if (from && !DATE.test(from)) return { error: "From: a date, YYYY-MM-DD" };
  if (to && !DATE.test(to)) return { error: "To: a date, YYYY-MM-DD" };
  if (from && to && from > to) return { error: "From must not be after To" };
  fromInput.value = from;
  toInput.value = to;
  const query = new URLSearchParams();
  if (from) query.set("from", from);
  if (to) query.set("to", nextDay(to));
  return { query, params };
}
