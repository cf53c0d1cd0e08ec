// The console's requests to its own API: URLs of a device, JSON reads and writes, the sign-in redirect.
export function deviceUrl(id) {
  return "/devices/" + encodeURIComponent(id);
}

export function deviceApi(id, suffix = "") {
  return "/api/devices/" + encodeURIComponent(id) + suffix;
}

// The sign-in has expired (or was never made): go to the sign-in page, and come back here after.
export function toSignIn() {
  window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname + window.location.search));
}

async function answer(response) {
  if (response.status === 401) {
    toSignIn();
    throw new Error("signed out");
  }
  let body = null;
  if ((response.headers.get("Content-Type") || "").includes("json")) body = await response.json();
  return { status: response.status, ok: response.ok, body, headers: response.headers };
}

// GET a JSON document; resolves to {status, ok, body, headers} so callers can tell 404 from failure.
export async function getJSON(url) {
  return answer(await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }));
}

// Send a JSON body (POST, PATCH, ...) as the console's pages do: the X-Requested-With header is
// what vesper_web/csrf.py accepts from a fetch (a cross-site page cannot set it without a preflight).
export async function sendJSON(method, url, body, contentType = "application/json") {
  const headers = { "X-Requested-With": "vesper-console", Accept: "application/json", "Content-Type": contentType };
  return answer(await fetch(url, { method, credentials: "same-origin", headers, body: JSON.stringify(body) }));
}

// The cursor of a Link header's rel="next" target (RFC 8288), or null. Only the cursor is taken:
// the page builds its own URLs, so a header never decides where the page sends a request.
export function nextCursor(link) {
  for (const [, target, params] of String(link || "").matchAll(/<([^>]*)>([^,]*)/g)) {
    const rel = /;\s*rel\s*=\s*"?([^";]*)"?/i.exec(params);
    if (rel && rel[1].toLowerCase().split(/\s+/).includes("next")) {
      return new URL(target, window.location.origin).searchParams.get("cursor");
    }
  }
  return null;
}

// `read` wrapped so that calls made while one is in flight share it (one request, one answer).
export function shared(read) {
  let pending = null;
  return () => {
    if (!pending) {
      pending = read().finally(() => {
        pending = null;
      });
    }
    return pending;
  };
}
