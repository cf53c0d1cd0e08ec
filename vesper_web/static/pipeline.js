// Whether the console can see (SPEC §11): GET /api/status every few seconds, a banner on every page while it
// cannot, liveness shown "as of" then, and the header's badge "live" only while the stream is connected too.
import { clockTime } from "./console.js";
import { getJSON } from "./http.js";

const POLL_MS = 3000;
let stream = null; // the page's stream state from live.js; null on a page without one
let pipelineOk = true; // until the first answer: the stream's own state decides alone

function ago(iso) {
  const s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  return s < 120 ? `${s} s` : s < 7200 ? `${Math.floor(s / 60)} min` : `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

// The server's sentences say "20:14:03 UTC"; the banner shows every time in the browser's zone, as its head does.
function localTimes(sentence) {
  return sentence.replace(/\b(\d{2}):(\d{2}):(\d{2}) UTC\b/g, (text, h, m, s) => {
    const at = new Date();
    at.setUTCHours(Number(h), Number(m), Number(s), 0);
    if (at.getTime() > Date.now() + 60000) at.setUTCDate(at.getUTCDate() - 1); // a time of day already past
    return clockTime(at.toISOString());
  });
}

function paintBadge() {
  const node = document.getElementById("live-indicator");
  if (!node || stream === null) return;
  const shown = stream === "live" && !pipelineOk ? "stale" : stream;
  node.dataset.state = shown;
  node.textContent = shown;
  node.title = shown === "stale" ? "The stream is connected, but the console is not receiving device data" : "Connection to the event stream";
}

// live.js tells each change of the page's stream here; the badge shows both.
export function streamState(state) {
  stream = state;
  paintBadge();
}

function paintBanner(status) {
  const banner = document.getElementById("pipeline-banner");
  if (!banner) return;
  banner.hidden = status.ok;
  const asOf = status.liveness_as_of || status.data_as_of;
  document.body.dataset.blind = status.liveness_as_of ? "true" : "false";
  document.body.style.setProperty("--liveness-as-of", status.liveness_as_of ? JSON.stringify(` (as of ${clockTime(status.liveness_as_of)})`) : '""');
  if (status.ok) return;
  const head = status.liveness_as_of
    ? `Not receiving device data since ${clockTime(status.liveness_as_of)} (${ago(status.liveness_as_of)}). What you see is as of then.`
    : "The console cannot show everything live.";
  banner.querySelector(".banner-head").textContent = head;
  banner.querySelector(".banner-problems").textContent = status.problems.map(localTimes).join(" ");
  banner.dataset.asOf = asOf || "";
}

async function poll() {
  try {
    const answer = await getJSON("/api/status"); // {status, ok, body}: `ok` is the HTTP status's, not the pipeline's
    if (!answer.ok || !answer.body) throw new Error(`GET /api/status: ${answer.status}`);
    const status = answer.body;
    pipelineOk = Boolean(status.ok);
    paintBanner(status);
  } catch {
    // The web itself does not answer: the stream's state says so on the badge; keep the last banner.
  }
  paintBadge();
  setTimeout(poll, POLL_MS);
}

if (document.getElementById("pipeline-banner")) poll();
