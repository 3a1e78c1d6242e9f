/* The WebSocket: exponential backoff, a `sync` on every (re)connect, a ping against API
 * Gateway's idle timeout, and REST polling while it is down. Each connect asks the REST API
 * for a one-time ticket (POST api/ws-ticket, valid 30 s): the token itself never goes into a
 * URL, where proxies, access logs and the browser's console would keep it. */
import { api } from "./api.js";
import { session } from "./session.js";

const PING_MS = 5 * 60 * 1000; // API Gateway drops a socket idle for 10 minutes
const POLL_MS = 3000;
const SLOW_POLL_EVERY = 5; // while the socket is up, a sweep every 5 polls heals a missed event

let socket = null;
let wanted = false;
let attempt = 0;
let retryTimer = null;
let pingTimer = null;
let pollTimer = null;
let handlers = { message() {}, status() {}, poll() {} };

/** The socket's URL with a fresh ticket; null when the server names no WebSocket URL. */
async function socketUrl() {
  const base = (window.BENCH_CONFIG || {}).wsUrl;
  if (!base) return null;
  const { ticket } = await api("POST", "api/ws-ticket");
  return base + (base.includes("?") ? "&" : "?") + "ticket=" + encodeURIComponent(ticket);
}

/** handlers: message(event object), status(state, note), poll() */
export function startLive(given) {
  handlers = { ...handlers, ...given };
  wanted = true;
  attempt = 0;
  connect();
  startPolling();
}

export function stopLive() {
  wanted = false;
  clearTimeout(retryTimer);
  clearInterval(pingTimer);
  clearInterval(pollTimer);
  pollTimer = null;
  if (socket) {
    socket.onclose = null;
    socket.close();
    socket = null;
  }
  handlers.status("offline", "");
}

async function connect() {
  if (!wanted || !session.token) return;
  handlers.status("connecting", attempt ? "Reconnecting…" : "Connecting…");
  let url;
  try {
    url = await socketUrl();
    if (!url) { handlers.status("offline", "Live updates are not configured: progress is polled."); return; }
    if (!wanted) return; // signed out while the ticket was on its way
    socket = new WebSocket(url);
  } catch (err) {
    scheduleRetry();
    return;
  }
  socket.onopen = () => {
    attempt = 0;
    handlers.status("online", "");
    send({ type: "sync" });
    clearInterval(pingTimer);
    pingTimer = setInterval(() => send({ type: "ping" }), PING_MS);
  };
  socket.onmessage = (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch (err) {
      return;
    }
    handlers.message(message);
  };
  socket.onclose = () => {
    socket = null;
    clearInterval(pingTimer);
    scheduleRetry();
  };
}

function scheduleRetry() {
  if (!wanted) return;
  const delay = Math.min(30000, 1000 * Math.pow(2, attempt)) * (0.8 + Math.random() * 0.4);
  attempt++;
  handlers.status("offline", "Live updates offline. Retrying in " + Math.round(delay / 1000) + " s…");
  clearTimeout(retryTimer);
  retryTimer = setTimeout(connect, delay);
}

export function send(message) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}

function isOpen() {
  return !!socket && socket.readyState === WebSocket.OPEN;
}

function startPolling() {
  clearInterval(pollTimer);
  let tick = 0;
  pollTimer = setInterval(() => {
    tick++;
    if (!session.token || (isOpen() && tick % SLOW_POLL_EVERY)) return;
    handlers.poll();
  }, POLL_MS);
}
