// The viewer page: one session, one WebSocket, the screen, input, chat and clipboard.
//
// The page asks the API (cookie + CSRF) for a single-use viewer ticket, opens
// /ws/viewer?session_id=…&ticket=…, announces the codecs it can decode, then follows the
// SessionState the relay sends. A dropped connection is retried with a fresh ticket;
// an ended, refused or revoked one is not.
import { api, whoAmI } from "../api.js";
import { h } from "../dom.js";
import { Input } from "./input.js";
import { Screen, decodableCodecs } from "./screen.js";
import { LIMITS, RefusedMessage, Scope, SpecialKey, State, decode, encode, toNumber } from "./wire.js";

const $ = (id) => document.getElementById(id);
const sessionId = location.pathname.split("/")[2];
const scope = new URLSearchParams(location.search).get("scope") === "view" ? "view" : "control";

/** Close codes after which trying again cannot help. */
const FINAL_CLOSES = {
  1009: "a message was too big",
  4001: "the viewer ticket was refused",
  4003: "this page's origin is not allowed",
  4004: "no such session",
  4010: "your access was revoked",
  4400: "a malformed message",
  4403: "a message that is not allowed",
  4410: "the session ended",
};

const END_REASONS = {
  consent_denied: "Denied: the person at the machine declined.",
  consent_timeout: "Denied: nobody answered the consent prompt.",
  ended_by_technician: "Ended by a technician.",
  agent_disconnected: "Ended: the agent went away.",
  agent_refused: "Ended: the agent refused the session.",
  server_restart: "Ended: the server restarted.",
};

const ui = {
  status: $("status"),
  overlay: $("overlay"),
  stats: $("stats"),
  display: $("display"),
  take: $("take-control"),
  chatLog: $("chat-log"),
  toast: $("toast"),
};

let me = null;
let ws = null;
let ended = false;
let retries = 0;
let retryTimer = 0;
let state = null; // the last SessionState
let codecs = [];
const stats = { frames: 0, bytes: 0 };

const screen = new Screen($("screen"), $("cursor"), {
  onNeedKeyframe: () => send("keyframeRequest", { sessionId, displayId: screen.displayId }),
  onError: (message) => toast(message),
  onPicture: () => {
    if (state && state.state === State.STATE_ACTIVE) ui.overlay.hidden = true;
  },
});
let input = null;

/** Fit: the whole remote screen in the window, scaled up or down, aspect kept. 1:1: one
 * remote pixel per CSS pixel, scrolling when larger. */
function layout() {
  const wrap = $("screen-wrap");
  const { width, height } = screen.canvas;
  let w = width;
  let h_ = height;
  if (wrap.classList.contains("fit")) {
    const scale = Math.min(wrap.clientWidth / width, wrap.clientHeight / height);
    w = Math.max(1, Math.floor(width * scale));
    h_ = Math.max(1, Math.floor(height * scale));
  }
  screen.canvas.style.width = `${w}px`;
  screen.canvas.style.height = `${h_}px`;
  // The cursor canvas is small and moved (and scaled) over the picture.
  screen.drawCursor();
}

function send(kind, message) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(encode(kind, message));
}

let toastTimer = 0;
function toast(message) {
  ui.toast.textContent = message;
  ui.toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (ui.toast.hidden = true), 5000);
}

/** kind: waiting | active | reconnecting | ended | error */
function showStatus(kind, text, overlayText = text) {
  ui.status.textContent = text;
  ui.status.className = `session-status s-${kind}`;
  ui.status.dataset.state = kind;
  const showOverlay = kind !== "active" || !screen.hasPicture;
  ui.overlay.hidden = !showOverlay;
  ui.overlay.textContent = kind === "active" && !screen.hasPicture ? "Waiting for the first picture…" : overlayText;
  document.title = `${text} · GuruConnect`;
}

function endedText(reason) {
  return END_REASONS[reason] || `Ended: ${(reason || "no reason given").replaceAll("_", " ")}.`;
}

function hasControl() {
  return Boolean(state && me && state.scope === Scope.SCOPE_CONTROL && state.controller === me.username);
}

function onSessionState(next) {
  state = next;
  if (next.displays && next.displays.length) fillDisplays(next.displays);
  switch (next.state) {
    case State.STATE_WAITING_FOR_AGENT:
      showStatus("waiting", "Waiting for the agent…");
      break;
    case State.STATE_AWAITING_CONSENT:
      showStatus("waiting", "Waiting for consent…", "Waiting for the person at the machine to allow this session…");
      break;
    case State.STATE_ACTIVE: {
      const who = next.controller ? (next.controller === me?.username ? "you have control" : `${next.controller} has control`) : "nobody has control";
      showStatus("active", `Connected · ${next.scope === Scope.SCOPE_VIEW ? "view only" : who}`);
      break;
    }
    case State.STATE_RECONNECTING:
      showStatus("reconnecting", "Agent reconnecting…", "The agent lost its connection; waiting for it to come back…");
      break;
    case State.STATE_ENDED:
      ended = true;
      showStatus("ended", endedText(next.reason));
      break;
    default:
      break;
  }
  const control = hasControl();
  if (input) {
    if (input.enabled && !control) input.releaseAll();
    input.enabled = control && next.state === State.STATE_ACTIVE;
  }
  ui.take.hidden = !(next.scope === Scope.SCOPE_CONTROL && !control && next.state === State.STATE_ACTIVE);
  // Controls that act on the remote machine work only while this viewer has control.
  const acting = control && next.state === State.STATE_ACTIVE;
  for (const id of ["display", "cad", "special", "text-mode", "type-submit", "clip-send"]) {
    $(id).disabled = !acting;
  }
}

function fillDisplays(displays) {
  if (displays.length > LIMITS.displays) {
    // The relay caps this too; the viewer does not rely on it.
    toast(`The agent declared ${displays.length} displays; the viewer shows at most ${LIMITS.displays}.`);
    displays = displays.slice(0, LIMITS.displays);
  }
  screen.setDisplays(displays);
  ui.display.replaceChildren(
    ...displays.map((d) => h("option", { value: d.id, selected: d.id === screen.displayId }, `${d.name || `Display ${d.id}`} (${d.width}×${d.height})${d.primary ? " · primary" : ""}`)),
  );
  ui.display.hidden = displays.length < 2;
}

/** Texts this page sent and the relay has not echoed yet: how "mine" is told apart from a
 * namesake (the user logged in at the machine may well be called the same). */
const unechoed = [];

/** Chat lines received but not yet in the log: added once per animation frame, together,
 * with one scroll (a flood from the agent costs one layout a frame, not one a line). */
let chatPending = [];
let chatFrame = 0;

function addChat(sender, text) {
  const mine = me && sender === me.username && unechoed[0] === text;
  if (mine) unechoed.shift();
  const shown = text.length > LIMITS.chatChars ? `${text.slice(0, LIMITS.chatChars)}…` : text;
  chatPending.push([mine, sender, shown]);
  // Only the last LIMITS.chatLines can ever be shown: keep no more than that waiting.
  if (chatPending.length > 2 * LIMITS.chatLines) chatPending = chatPending.slice(-LIMITS.chatLines);
  if (!chatFrame) chatFrame = requestAnimationFrame(flushChat);
}

function flushChat() {
  chatFrame = 0;
  const lines = chatPending
    .slice(-LIMITS.chatLines)
    .map(([mine, sender, text]) => h("div", { class: `line${mine ? " me" : ""}` }, h("span", { class: "sender" }, `${sender || "remote"}:`), text));
  chatPending = [];
  const log = ui.chatLog;
  log.append(...lines);
  // The log keeps the last LIMITS.chatLines lines.
  let extra = log.childElementCount - LIMITS.chatLines;
  while (extra-- > 0) log.firstElementChild.remove();
  log.scrollTop = log.scrollHeight;
}

function onMessage(event) {
  stats.bytes += event.data.byteLength;
  let kind;
  let message;
  try {
    [kind, message] = decode(event.data);
  } catch (error) {
    toast(error instanceof RefusedMessage ? `refused: ${error.message}` : "the server sent a message this page cannot read");
    return;
  }
  switch (kind) {
    case "sessionState":
      onSessionState(message);
      break;
    case "videoFrame":
      stats.frames += 1;
      try {
        screen.frame(message);
      } catch (error) {
        toast(`cannot draw a frame: ${error.message}`);
      }
      break;
    case "cursorShape":
      screen.cursorShape(message);
      break;
    case "cursorPosition":
      screen.cursorPosition(message);
      break;
    case "displayList":
      fillDisplays(message.displays);
      break;
    case "chat":
      addChat(message.sender, message.text);
      break;
    case "clipboard":
      $("clip-in").value = message.text;
      break;
    case "heartbeat":
      if (!message.reply) send("heartbeat", { sentAtMs: toNumber(message.sentAtMs), reply: true });
      break;
    case "error":
      toast(message.message || `error ${message.code}`);
      break;
    case "disconnect":
      break;
    default:
      break;
  }
}

function scheduleRetry(why) {
  if (ended) return;
  const delay = Math.min(10000, 500 * 2 ** retries);
  retries += 1;
  showStatus("reconnecting", "Reconnecting…", `Connection lost (${why}). Reconnecting…`);
  clearTimeout(retryTimer);
  retryTimer = setTimeout(connect, delay);
}

async function connect() {
  let ticket;
  try {
    ticket = await api("POST", `/api/sessions/${sessionId}/viewer-token`, { scope });
  } catch (error) {
    if (error.status === 409) {
      ended = true;
      // Ended before (or while) this page joined: say how, e.g. consent was denied.
      let why = "This session has ended.";
      try {
        const session = await api("GET", `/api/sessions/${sessionId}`);
        if (session.end_reason) why = endedText(session.end_reason);
      } catch {
        // the plain message will do
      }
      showStatus("ended", why);
    } else if (error.status === 404) {
      ended = true;
      showStatus("error", "No such session.");
    } else if (error.status === 401) {
      location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    } else if (error.status === 0 || error.status >= 500) {
      scheduleRetry(error.message);
    } else {
      ended = true;
      showStatus("error", `Cannot join: ${error.message}`);
    }
    return;
  }
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const url = `${scheme}//${location.host}/ws/viewer?session_id=${encodeURIComponent(sessionId)}&ticket=${encodeURIComponent(ticket.ticket)}`;
  ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  ws.addEventListener("open", () => {
    retries = 0;
    send("viewerHello", { codecs });
  });
  ws.addEventListener("message", onMessage);
  ws.addEventListener("close", (event) => {
    if (input) input.releaseAll();
    if (input) input.enabled = false;
    ws = null;
    if (ended) return;
    const final = FINAL_CLOSES[event.code];
    if (event.code === 4410) {
      ended = true;
      showStatus("ended", state && state.reason ? endedText(state.reason) : `Ended: ${event.reason || "the session ended"}.`);
    } else if (final) {
      ended = true;
      showStatus("error", `Disconnected: ${event.reason || final}.`);
    } else {
      scheduleRetry(event.reason || `code ${event.code}`);
    }
  });
}

function wireToolbar() {
  $("cad").addEventListener("click", () => {
    send("specialKey", { key: SpecialKey.SPECIAL_KEY_CTRL_ALT_DEL });
    $("screen").focus();
  });
  $("special").addEventListener("change", (event) => {
    const key = Number(event.target.value);
    if (key) send("specialKey", { key });
    event.target.value = "";
    $("screen").focus();
  });
  $("text-mode").addEventListener("click", (event) => {
    input.releaseAll();
    input.textMode = !input.textMode;
    event.target.setAttribute("aria-pressed", String(input.textMode));
    event.target.classList.toggle("active", input.textMode);
    $("screen").focus();
  });
  ui.take.addEventListener("click", () => send("controlRequest", { take: true }));
  ui.display.addEventListener("change", (event) => {
    send("displaySwitch", { displayId: Number(event.target.value) });
    screen.hasPicture = false;
    screen.requestKeyframe();
  });
  $("scale").addEventListener("click", (event) => {
    const fit = $("screen-wrap").classList.toggle("fit");
    event.target.textContent = fit ? "Fit" : "1:1";
    event.target.setAttribute("aria-pressed", String(fit));
    layout();
    $("screen").focus();
  });
  window.addEventListener("resize", layout);
  screen.onResize = layout;
  $("fullscreen").addEventListener("click", async () => {
    if (document.fullscreenElement) {
      await document.exitFullscreen();
      return;
    }
    try {
      await document.documentElement.requestFullscreen({ navigationUI: "hide" });
      // With the keyboard locked, Win, Alt+Tab and Esc reach the remote machine
      // (holding Esc still leaves fullscreen).
      if (navigator.keyboard && navigator.keyboard.lock) await navigator.keyboard.lock();
    } catch (error) {
      toast(`fullscreen: ${error.message}`);
    }
    $("screen").focus();
  });
  document.addEventListener("fullscreenchange", () => {
    if (!document.fullscreenElement && navigator.keyboard && navigator.keyboard.unlock) navigator.keyboard.unlock();
  });
  $("end").addEventListener("click", async (event) => {
    const button = event.target;
    if (!button.dataset.armed) {
      button.dataset.armed = "1";
      button.textContent = "End for everyone?";
      setTimeout(() => {
        delete button.dataset.armed;
        button.textContent = "End";
      }, 4000);
      return;
    }
    try {
      await api("DELETE", `/api/sessions/${sessionId}`);
    } catch (error) {
      toast(`cannot end the session: ${error.message}`);
    }
  });
  $("chat-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const field = $("chat-input");
    const text = field.value.trim();
    if (!text) return;
    unechoed.push(text);
    send("chat", { sessionId, text, sentAtMs: Date.now() });
    field.value = "";
  });
  $("type-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const field = $("type-input");
    if (!field.value || !hasControl()) return;
    send("keyEvent", { text: field.value });
    field.value = "";
  });
  $("clip-paste").addEventListener("click", async () => {
    try {
      $("clip-out").value = await navigator.clipboard.readText();
    } catch {
      toast("the browser did not allow reading your clipboard; paste into the box instead");
    }
  });
  $("clip-send").addEventListener("click", () => {
    const text = $("clip-out").value;
    if (text) send("clipboard", { text });
  });
  $("clip-copy").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText($("clip-in").value);
    } catch {
      $("clip-in").select();
      toast("press Ctrl+C to copy");
    }
  });
  $("screen").addEventListener("click", () => $("screen").focus());
}

setInterval(() => {
  ui.stats.textContent = `${stats.frames} fps · ${Math.round((stats.bytes * 8) / 1000)} kbit/s`;
  ui.stats.dataset.fps = String(stats.frames);
  stats.frames = 0;
  stats.bytes = 0;
}, 1000);

async function start() {
  if (!/^[0-9a-f-]{36}$/i.test(sessionId || "")) {
    showStatus("error", "This is not a session address.");
    return;
  }
  me = await whoAmI();
  if (!me) {
    location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    return;
  }
  let keyTable = {};
  try {
    const response = await fetch("/web/keys.json", { cache: "no-cache" });
    if (response.ok) keyTable = await response.json();
  } catch {
    // without the table only text mode can type
  }
  input = new Input($("screen"), screen, keyTable, send);
  wireToolbar();
  layout();
  codecs = await decodableCodecs();
  document.body.dataset.codecs = codecs.join(",");
  showStatus("waiting", "Connecting…");
  await connect();
}

start();
