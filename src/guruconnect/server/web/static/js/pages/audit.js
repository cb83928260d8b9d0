// The audit trail: filter by type, machine, session and user; page back in time.
import { api } from "../api.js";
import { h, replace, table, when } from "../dom.js";

export const PAGE_SIZE = 50;

const COMMON_TYPES = [
  "auth.login", "auth.login_failed", "auth.logout", "auth.csrf_rejected", "agent.connected",
  "agent.disconnected", "agent.auth_failed", "agent_key.issued", "agent_key.revoked",
  "support_code.created", "support_code.redeemed", "session.started", "session.ended",
  "consent.requested", "consent.granted", "consent.denied", "viewer.ticket_issued",
  "viewer.joined", "viewer.left", "user.created", "user.updated",
];

function uuidOrNull(value) {
  const v = value.trim();
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v) ? v : null;
}

export async function render(main, { me }) {
  const params = new URLSearchParams(location.search);
  const type = h("input", { id: "audit-type", list: "audit-types", placeholder: "any type", value: params.get("event_type") || "", "aria-label": "Event type" });
  const types = h("datalist", { id: "audit-types" }, COMMON_TYPES.map((t) => h("option", { value: t })));
  const machine = h("select", { id: "audit-machine", "aria-label": "Machine" }, h("option", { value: "" }, "any machine"));
  const user = h("select", { id: "audit-user", "aria-label": "User" }, h("option", { value: "" }, "any user"));
  const session = h("input", { id: "audit-session", placeholder: "session id", value: params.get("session_id") || "", "aria-label": "Session id" });
  const status = h("p", { class: "error", role: "alert", hidden: true });
  const list = h("div", { id: "audit-list" });
  const newer = h("button", { type: "button", id: "audit-newer", disabled: true }, "← Newer");
  const older = h("button", { type: "button", id: "audit-older", disabled: true }, "Older →");
  const pageLabel = h("span", { class: "muted", id: "audit-page" });

  const machineNames = new Map();
  const userNames = new Map();
  // Cursors of the pages shown so far: [null (newest), before1, before2, ...].
  let cursors = [null];
  let nextBefore = null;

  async function load() {
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (type.value.trim()) query.set("event_type", type.value.trim());
    if (machine.value) query.set("machine_id", machine.value);
    if (user.value) query.set("user_id", user.value);
    const sessionId = uuidOrNull(session.value);
    if (session.value.trim() && !sessionId) {
      status.textContent = "The session id is not a valid id.";
      status.hidden = false;
      return;
    }
    if (sessionId) query.set("session_id", sessionId);
    const before = cursors[cursors.length - 1];
    if (before) query.set("before", before);
    try {
      const page = await api("GET", `/api/events?${query}`);
      status.hidden = true;
      nextBefore = page.next_before;
      draw(page.events);
    } catch (error) {
      status.textContent = `Cannot load the audit log: ${error.message}`;
      status.hidden = false;
    }
  }

  function draw(events) {
    newer.disabled = cursors.length <= 1;
    older.disabled = !nextBefore;
    pageLabel.textContent = `Page ${cursors.length}`;
    replace(
      list,
      table(
        [
          ["Time", (e) => when(e.created_at)],
          ["Event", (e) => h("code", {}, e.event_type)],
          ["Who", (e) => e.actor || (e.user_id ? userNames.get(e.user_id) || e.user_id.slice(0, 8) : "—")],
          ["From", (e) => e.source_address || "—"],
          ["Machine", (e) => (e.machine_id ? machineNames.get(e.machine_id) || e.machine_id.slice(0, 8) : "—")],
          ["Session", (e) => (e.session_id ? h("code", { title: e.session_id }, e.session_id.slice(0, 8)) : "—")],
          ["Detail", (e) => (Object.keys(e.detail || {}).length ? h("code", { class: "detail" }, JSON.stringify(e.detail)) : "")],
        ],
        events,
        { empty: "No events match.", rowAttrs: (e) => ({ dataset: { eventType: e.event_type } }) },
      ),
    );
  }

  const restart = () => {
    cursors = [null];
    load();
  };
  const form = h(
    "form",
    { class: "toolbar filters", onsubmit: (event) => { event.preventDefault(); restart(); } },
    type,
    types,
    machine,
    user,
    session,
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
  main.append(form, status, list, h("div", { class: "toolbar pager" }, newer, pageLabel, older));

  try {
    const machines = await api("GET", "/api/machines");
    for (const m of machines) {
      machineNames.set(m.id, m.name);
      machine.append(h("option", { value: m.id }, m.name));
    }
    if (me.role === "admin") {
      for (const u of await api("GET", "/api/users")) {
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
