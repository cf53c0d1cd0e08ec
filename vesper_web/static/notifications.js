// Notifications: the delivery log, polled while the tab is visible, and a "Send test" button per channel
// (admins only: the others' buttons are hidden). An escalation (told to a rule's escalate_to, §14) has a badge.
//
// Titles, bodies, errors and channel names reach the page through textContent and attributes only.
import { clockTime, el, fullTime, getJSON, shared, timeEl, toSignIn } from "./console.js";

const LIMIT = 200;
const POLL_MS = 5000;
const MAX_IDS = 10; // event ids shown per row; the rest are counted
// Status -> the colour of the console's badges.
const STATUS_HEALTH = { sent: "ok", pending: "unknown", failed: "warning", dropped: "critical" };

const tbody = document.getElementById("notification-rows");
const empty = document.getElementById("notifications-empty");
const status = document.getElementById("notify-status");

function text(value) {
  return value === null || value === undefined ? "" : String(value);
}

function statusChip(n) {
  const s = STATUS_HEALTH[n.status] ? n.status : "unknown";
  const title = n.status === "sent" && n.sent_at ? `sent ${fullTime(n.sent_at)}` : text(n.status);
  return el("span", { className: "badge", dataset: { status: s, health: STATUS_HEALTH[s] || "unknown" }, attrs: { title }, text: n.status });
}

// Event N links to the timeline from N down (/events?before=N+1: the events older than N+1).
function eventLink(id) {
  const n = Number(id);
  if (!Number.isSafeInteger(n) || n < 0) return el("span", { className: "mono", text: text(id) });
  return el("a", { className: "mono event-link", attrs: { href: `/events?before=${n + 1}`, title: `Event ${n} in the timeline` }, text: String(n) });
}

function eventIds(ids) {
  if (!Array.isArray(ids) || ids.length === 0) return el("span", { className: "muted", text: "–" });
  const links = ids.slice(0, MAX_IDS).flatMap((id, i) => (i ? [", ", eventLink(id)] : [eventLink(id)]));
  const more = ids.length > MAX_IDS ? ` and ${ids.length - MAX_IDS} more` : "";
  return el("span", { className: "event-ids" }, ...links, more);
}

// An escalation's mark: nobody acknowledged what its lines say within the rule's escalate_after_s.
function escalationBadge(n) {
  if (!n.escalation) return null;
  const title = "Escalated: nobody acknowledged these in time";
  return el("span", { className: "badge n-escalation", dataset: { health: "critical" }, attrs: { title }, text: "escalation" });
}

// The title, and under it the whole body as sent (line breaks kept), readable without a hover.
function message(n) {
  const head = el("div", { className: "n-head" }, escalationBadge(n), el("strong", { className: "n-title", text: n.title }));
  return el("td", { className: "c-title" }, head, el("div", { className: "n-body", text: n.body }));
}

function row(n) {
  return el(
    "tr",
    { className: "notification", dataset: { notificationId: n.id, status: n.status, channel: n.channel, escalation: n.escalation ? "true" : "false" } },
    el("td", { className: "c-time" }, timeEl(n.created_at, false)),
    el("td", { className: "c-channel mono", text: n.channel }),
    el("td", { className: "c-status" }, statusChip(n)),
    el("td", { className: "c-attempts", text: n.attempts }),
    message(n),
    el("td", { className: n.last_error ? "c-error" : "c-error muted", text: n.last_error || "–" }),
    el("td", { className: "c-events" }, eventIds(n.event_ids)),
  );
}

function showStatus(kind, message) {
  status.dataset.result = kind;
  status.textContent = message;
}

async function read() {
  try {
    const { ok, status: code, body } = await getJSON(`/api/notifications?limit=${LIMIT}`);
    if (!ok || !body || !Array.isArray(body.notifications)) throw new Error(`HTTP ${code}`);
    tbody.replaceChildren(...body.notifications.map(row));
    empty.hidden = body.notifications.length > 0;
    empty.textContent = "No notifications yet";
    showStatus("ok", `Updated ${clockTime(new Date())}`);
  } catch (error) {
    if (error.message === "signed out") return;
    showStatus("error", "Could not read the notifications; retrying");
  }
}

// Read the log and replace the table; calls made meanwhile share one request.
const load = shared(read);

setInterval(() => {
  if (document.visibilityState === "visible") load();
}, POLL_MS);
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") load();
});
load();

// --- send test -------------------------------------------------------------------------------

async function sendTest(button) {
  const channel = button.dataset.channel || "";
  const result = button.closest("tr").querySelector(".action-result");
  button.disabled = true;
  result.dataset.result = "pending";
  result.textContent = "Sending…";
  try {
    const response = await fetch("/api/notify/test", {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-Requested-With": "vesper-console", "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ channel }),
    });
    if (response.status === 401) {
      toSignIn();
      return;
    }
    const body = (response.headers.get("Content-Type") || "").includes("json") ? await response.json() : null;
    if (response.status === 202 && body) {
      result.dataset.result = "ok";
      result.textContent = `Queued as message ${text(body.id)}`;
      load();
    } else {
      result.dataset.result = "error";
      result.textContent = `Failed: ${body && body.error ? text(body.error) : "HTTP " + response.status}`;
    }
  } catch {
    result.dataset.result = "error";
    result.textContent = "Failed: the console is unreachable";
  } finally {
    button.disabled = false;
  }
}

// POST /api/notify/test is admin-only: the others see the channels without the button.
const admin = document.body.dataset.role === "admin";
for (const button of document.querySelectorAll("button.notify-test")) {
  if (admin) button.addEventListener("click", () => sendTest(button));
  else button.closest("td").hidden = true;
}
