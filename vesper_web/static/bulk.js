// "Act on these devices" (§12): a bulk action on the list's current filter (the one in the page's
// URL, as device_filters.js keeps it): silence, health check, add or remove a tag. The count is
// asked first (POST /api/bulk with dry_run), the confirmation names it ("Silence 1,234 devices?"),
// then the action is sent and its answer shown. Operator text is sent as typed and shown with
// textContent only.
import { fromLocation } from "./device_filters.js";
import { sendJSON } from "./http.js";

const $ = (id) => document.getElementById(id);
const count = new Intl.NumberFormat();
const VERB = {
  silence: ["Silence", "silenced"],
  health_check: ["Send a health check to", "health checks under way for"],
  add_tag: ["Add the tag to", "tagged"],
  remove_tag: ["Remove the tag from", "untagged"],
};

// The list's filter as POST /api/bulk takes it (its sort is no filter).
export function bulkFilter(query = fromLocation()) {
  const filter = {};
  if (query.q) filter.q = query.q;
  if (query.health.length) filter.health = query.health;
  if (query.tags.length) filter.tag = query.tags;
  if (query.site) filter.site = query.site;
  return filter;
}

function devices(n) {
  return `${count.format(n)} device${n === 1 ? "" : "s"}`;
}

function show(node, state, text) {
  node.dataset.result = state;
  node.textContent = text;
}

// The action's own fields from the form.
function fields(action) {
  if (action === "silence") {
    const body = { duration_s: Number($("bulk-duration").value) };
    const comment = $("bulk-comment").value.trim();
    if (comment) body.comment = comment;
    return body;
  }
  if (action === "add_tag" || action === "remove_tag") return { tag: $("bulk-tag").value.trim() };
  return {};
}

// What the answer says was done.
function outcome(action, answer) {
  const done = `${VERB[action][1]}: ${devices(answer.count)}`;
  if (action === "add_tag" || action === "remove_tag") {
    const full = answer.full ? `, ${devices(answer.full)} already at the most tags` : "";
    return `${done} changed (${devices(answer.unchanged)} unchanged${full})`;
  }
  if (action === "health_check") return `${done}, sent at ${answer.per_s}/s (about ${Math.ceil(answer.eta_s)} s)`;
  return done;
}

function showFields() {
  const action = $("bulk-action").value;
  for (const node of document.querySelectorAll("[data-bulk-for]")) {
    node.hidden = !node.dataset.bulkFor.split(" ").includes(action);
  }
}

function init() {
  const form = $("bulk-form");
  if (!form) return;
  const result = $("bulk-result");
  const confirmBox = $("bulk-confirm");
  let pending = null; // the request the confirmation is about

  const reset = () => {
    pending = null;
    confirmBox.hidden = true;
  };
  $("bulk-action").addEventListener("change", () => {
    showFields();
    reset();
  });
  form.addEventListener("input", reset);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    reset();
    const action = $("bulk-action").value;
    const body = { filter: bulkFilter(), action, ...fields(action) };
    show(result, "", "Counting…");
    const { ok, body: answer } = await sendJSON("POST", "/api/bulk", { ...body, dry_run: true });
    if (!ok) return show(result, "error", answer && answer.error ? answer.error : "The count failed; try again.");
    if (!answer.matched) return show(result, "error", "No device matches this filter.");
    pending = body;
    show(result, "", "");
    $("bulk-question").textContent = `${VERB[action][0]} ${devices(answer.matched)}?`;
    $("bulk-yes").textContent = `${VERB[action][0]} ${devices(answer.matched)}`;
    confirmBox.hidden = false;
    $("bulk-yes").focus();
  });
  $("bulk-no").addEventListener("click", () => {
    reset();
    show(result, "", "Nothing done.");
  });
  $("bulk-yes").addEventListener("click", async () => {
    if (!pending) return;
    const body = pending;
    reset();
    show(result, "", "Working…");
    const { ok, body: answer } = await sendJSON("POST", "/api/bulk", body);
    if (!ok) return show(result, "error", answer && answer.error ? answer.error : "The action failed; try again.");
    show(result, "ok", outcome(body.action, answer));
  });
  showFields();
}

init();
