// @ts-check
// The audit trail: filter by type, machine, session, user and time; page back in time;
// export the filtered range (CSV or JSON lines). The type suggestions and their labels come
// from the server's own vocabulary (/web/audit-types.json), never a hand-kept list.
import { api } from "../api.js";
import { h, replace, table, when } from "../dom.js";

export const PAGE_SIZE = 50;

/**
 * @typedef {object} AuditEvent
 * @property {string} id
 * @property {string} event_type
 * @property {string} created_at
 * @property {string | null} session_id
 * @property {string | null} machine_id
 * @property {string | null} user_id
 * @property {string | null} actor
 * @property {string | null} source_address
 * @property {Record<string, unknown>} detail
 *
 * @typedef {{ type: string, label: string }} AuditType
 * @typedef {{ id: string, name: string }} Named
 * @typedef {{ id: string, username: string }} UserRow
 * @typedef {{ role: string }} Me
 */

/** @param {string} value */
function uuidOrNull(value) {
  const v = value.trim();
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v) ? v : null;
}

/** "closed_viewers" -> "closed viewers" */
function words(/** @type {string} */ key) {
  return key.replace(/_/g, " ");
}

/**
 * One detail value as text: lists joined, yes/no for booleans, nested objects flattened.
 * @param {unknown} value
 * @returns {string}
 */
export function readable(value) {
  if (value === null || value === undefined || value === "") return "—";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (Array.isArray(value)) return value.length ? value.map(readable).join(", ") : "none";
  if (typeof value === "object") {
    return Object.entries(/** @type {Record<string, unknown>} */ (value))
      .map(([k, v]) => `${words(k)}: ${readable(v)}`)
      .join("; ");
  }
  return String(value);
}

/**
 * The detail as a list of "key: value" lines (a <dl>), not raw JSON.
 * @param {Record<string, unknown>} detail
 */
function details(detail) {
  const entries = Object.entries(detail || {});
  if (!entries.length) return "";
  return h(
    "dl",
    { class: "detail" },
    // The spaces between terms keep the cell's text readable when copied (and equal to
    // what is shown, whitespace aside).
    entries.map(([key, value]) => [h("dt", {}, words(key)), " ", h("dd", {}, readable(value)), " "]),
  );
}

/**
 * @param {HTMLElement} main
 * @param {{ me: Me }} context
 */
export async function render(main, { me }) {
  const params = new URLSearchParams(location.search);
  const type = /** @type {HTMLInputElement} */ (h("input", { id: "audit-type", list: "audit-types", placeholder: "any type", value: params.get("event_type") || "", "aria-label": "Event type" }));
  const types = h("datalist", { id: "audit-types" });
  const machine = /** @type {HTMLSelectElement} */ (h("select", { id: "audit-machine", "aria-label": "Machine" }, h("option", { value: "" }, "any machine")));
  const user = /** @type {HTMLSelectElement} */ (h("select", { id: "audit-user", "aria-label": "User" }, h("option", { value: "" }, "any user")));
  const session = /** @type {HTMLInputElement} */ (h("input", { id: "audit-session", placeholder: "session id", value: params.get("session_id") || "", "aria-label": "Session id" }));
  const since = /** @type {HTMLInputElement} */ (h("input", { id: "audit-since", type: "datetime-local", "aria-label": "From (local time)" }));
  const until = /** @type {HTMLInputElement} */ (h("input", { id: "audit-until", type: "datetime-local", "aria-label": "Until (local time)" }));
  const status = h("p", { class: "error", role: "alert", hidden: true });
  const list = h("div", { id: "audit-list" });
  const newer = /** @type {HTMLButtonElement} */ (h("button", { type: "button", id: "audit-newer", disabled: true }, "← Newer"));
  const older = /** @type {HTMLButtonElement} */ (h("button", { type: "button", id: "audit-older", disabled: true }, "Older →"));
  const pageLabel = h("span", { class: "muted", id: "audit-page" });
  const exportCsv = /** @type {HTMLAnchorElement} */ (h("a", { id: "audit-export-csv", class: "button", download: "" }, "Export CSV"));
  const exportJsonl = /** @type {HTMLAnchorElement} */ (h("a", { id: "audit-export-jsonl", class: "button", download: "" }, "Export JSON lines"));

  /** @type {Map<string, string>} */
  const machineNames = new Map();
  /** @type {Map<string, string>} */
  const userNames = new Map();
  /** @type {Map<string, string>} */
  const labels = new Map();
  // Cursors of the pages shown so far: [null (newest), before1, before2, ...].
  /** @type {(string | null)[]} */
  let cursors = [null];
  /** @type {string | null} */
  let nextBefore = null;
  // Only the newest request draws: an older answer arriving late must not replace it.
  let latest = 0;

  /** The filters as query parameters (null: the session id is malformed). */
  function filters() {
    const query = new URLSearchParams();
    if (type.value.trim()) query.set("event_type", type.value.trim());
    if (machine.value) query.set("machine_id", machine.value);
    if (user.value) query.set("user_id", user.value);
    if (since.value) query.set("since", new Date(since.value).toISOString());
    if (until.value) query.set("until", new Date(until.value).toISOString());
    const sessionId = uuidOrNull(session.value);
    if (session.value.trim() && !sessionId) return null;
    if (sessionId) query.set("session_id", sessionId);
    return query;
  }

  async function load() {
    const query = filters();
    if (!query) {
      status.textContent = "The session id is not a valid id.";
      status.hidden = false;
      return;
    }
    for (const [link, format] of /** @type {const} */ ([[exportCsv, "csv"], [exportJsonl, "jsonl"]])) {
      const exported = new URLSearchParams(query);
      exported.set("format", format);
      link.href = `/api/events/export?${exported}`;
    }
    query.set("limit", String(PAGE_SIZE));
    const before = cursors[cursors.length - 1];
    if (before) query.set("before", before);
    const mine = ++latest;
    try {
      /** @type {{ events: AuditEvent[], next_before: string | null }} */
      const page = await api("GET", `/api/events?${query}`);
      if (mine !== latest) return;
      status.hidden = true;
      nextBefore = page.next_before;
      draw(page.events);
    } catch (error) {
      if (mine !== latest) return;
      status.textContent = `Cannot load the audit log: ${error instanceof Error ? error.message : error}`;
      status.hidden = false;
    }
  }

  /** @param {AuditEvent[]} events */
  function draw(events) {
    newer.disabled = cursors.length <= 1;
    older.disabled = !nextBefore;
    pageLabel.textContent = `Page ${cursors.length}`;
    /** @type {[string, (e: AuditEvent) => any][]} */
    const columns = [
      ["Time", (e) => when(e.created_at)],
      ["What", (e) => labels.get(e.event_type) || ""],
      ["Event", (e) => h("code", {}, e.event_type)],
      ["Who", (e) => e.actor || (e.user_id ? userNames.get(e.user_id) || e.user_id.slice(0, 8) : "—")],
      ["From", (e) => e.source_address || "—"],
      ["Machine", (e) => (e.machine_id ? machineNames.get(e.machine_id) || e.machine_id.slice(0, 8) : "—")],
      ["Session", (e) => (e.session_id ? h("code", { title: e.session_id }, e.session_id.slice(0, 8)) : "—")],
      ["Detail", (e) => details(e.detail)],
    ];
    replace(
      list,
      table(
        columns,
        events,
        /** @type {any} */ ({
          empty: "No events match.",
          rowAttrs: (/** @type {AuditEvent} */ e) => ({ dataset: { eventType: e.event_type } }),
        }),
      ),
    );
  }

  const restart = () => {
    cursors = [null];
    load();
  };
  const form = h(
    "form",
    { class: "toolbar filters", onsubmit: (/** @type {SubmitEvent} */ event) => { event.preventDefault(); restart(); } },
    type,
    types,
    machine,
    user,
    session,
    since,
    until,
    h("button", { type: "submit", class: "primary" }, "Filter"),
  );
  machine.addEventListener("change", restart);
  user.addEventListener("change", restart);
  newer.addEventListener("click", () => {
    cursors.pop();
    load();
  });
  older.addEventListener("click", () => {
    cursors.push(nextBefore);
    load();
  });
  main.append(
    form,
    status,
    list,
    h("div", { class: "toolbar pager" }, newer, pageLabel, older),
    h("div", { class: "toolbar export" }, h("span", { class: "muted" }, "The filtered range, newest first:"), exportCsv, exportJsonl),
  );

  try {
    const response = await fetch("/web/audit-types.json", { cache: "no-cache" });
    /** @type {AuditType[]} */
    const vocabulary = await response.json();
    for (const t of vocabulary) {
      labels.set(t.type, t.label);
      types.append(h("option", { value: t.type, label: `${t.label} (${t.type})` }));
    }
  } catch {
    // suggestions are a convenience; the log itself still loads
  }
  try {
    /** @type {Named[]} */
    const machines = await api("GET", "/api/machines");
    for (const m of machines) {
      machineNames.set(m.id, m.name);
      machine.append(h("option", { value: m.id }, m.name));
    }
    if (me.role === "admin") {
      /** @type {UserRow[]} */
      const users = await api("GET", "/api/users");
      for (const u of users) {
        userNames.set(u.id, u.username);
        user.append(h("option", { value: u.id }, u.username));
      }
    } else {
      user.hidden = true;
    }
  } catch {
    // filters by name are a convenience; the log itself still loads
  }
  await load();
}
