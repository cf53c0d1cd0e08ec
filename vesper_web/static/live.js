// The live stream and the schedulers that keep a page's reads few whatever the event rate.
import { getJSON } from "./http.js";
import { streamState } from "./pipeline.js";

// The badge shows the stream's state and the pipeline's together (pipeline.js paints it).
const setLive = streamState;

// Follow /events/stream. `onOpen` runs on every (re)connect so the page re-reads the API;
// `onEvent` gets each classified event. EventSource resumes with Last-Event-ID by itself.
export function follow(url, { onOpen, onEvent }) {
  let source = null;
  // Re-read the page's state from the API; while that fails the page may be stale, so say so and retry.
  const current = (s) => source === s && s.readyState === EventSource.OPEN;
  const reread = (s, attempt) => {
    Promise.resolve()
      .then(onOpen)
      .then(
        () => current(s) && setLive("live"),
        () => {
          if (!current(s)) return;
          setLive("reconnecting");
          setTimeout(() => current(s) && reread(s, attempt + 1), Math.min(1000 * 2 ** attempt, 15000));
        },
      );
  };
  const connect = () => {
    const s = new EventSource(url);
    source = s;
    s.addEventListener("open", () => {
      setLive("live");
      reread(s, 0);
    });
    s.addEventListener("error", () => {
      if (source !== s) return;
      setLive("reconnecting");
      // CLOSED means the browser gave up (e.g. an HTTP error): start a fresh source later,
      // unless the error was a 401 (EventSource cannot tell us, /api/me can).
      if (s.readyState === EventSource.CLOSED) {
        source = null;
        const retry = () => setTimeout(connect, 3000);
        getJSON("/api/me").then(retry, retry);
      }
    });
    s.addEventListener("message", (message) => {
      let data;
      try {
        data = JSON.parse(message.data);
      } catch {
        return;
      }
      for (const item of Array.isArray(data) ? data : [data]) {
        if (item && typeof item === "object" && item.type !== "connected") onEvent(item);
      }
    });
  };
  connect();
  // Leaving the page closes the stream; coming back from the back/forward cache opens a new one.
  window.addEventListener("pagehide", () => {
    if (source) source.close();
    source = null;
  });
  window.addEventListener("pageshow", (event) => {
    if (event.persisted && !source) connect();
  });
}

// Run `task(key)` for a key at most once at a time; calls made meanwhile coalesce into one rerun.
export function coalescing(task) {
  const running = new Map();
  const run = async (key) => {
    const entry = running.get(key);
    if (entry) {
      entry.again = true;
      return;
    }
    const mine = { again: false };
    running.set(key, mine);
    try {
      do {
        mine.again = false;
        try {
          await task(key);
        } catch {
          // A failed read is retried by the next event or by the next stream reconnect.
        }
      } while (mine.again);
    } finally {
      running.delete(key);
    }
  };
  return run;
}

// Run `task` after something asked for it, at most once per `intervalMs` however often it is asked,
// and never twice at once: asks made meanwhile become one more run after the current one.
// `delayMs` lets the asks of one burst (one ingest batch) gather before the first run.
export function throttled(task, intervalMs = 1000, delayMs = 150) {
  let timer = null;
  let running = false;
  let again = false;
  let last = -Infinity;
  const ask = () => {
    if (running) {
      again = true;
      return;
    }
    if (timer !== null) return;
    const now = performance.now();
    timer = setTimeout(run, Math.max(delayMs, last + intervalMs - now));
  };
  const run = async () => {
    timer = null;
    running = true;
    last = performance.now();
    try {
      await task();
    } catch {
      // A failed read is retried by the next ask or by the next stream reconnect.
    } finally {
      running = false;
      if (again) {
        again = false;
        ask();
      }
    }
  };
  return ask;
}
