// @ts-check
// Active and recent sessions: state, machine, technician, duration, end reason; join, end.
// Kept current by the console's event stream (live.js): a session created, changing state
// or ending reloads the list, and only the rows that changed are redrawn.
import { api, can } from "../api.js";
import { confirmButton, duration, h, updateTable, when } from "../dom.js";
import { coalesce, statusLine, subscribe } from "../live.js";

/**
 * @typedef {{id: string, machine_id: string, technician_id: string | null, state: string,
 *   scope: string, kind?: string, created_at: string, started_at: string | null,
 *   ended_at: string | null, end_reason: string | null}} Session
 * @typedef {{id: string, username: string, display_name?: string | null, role: string,
 *   permissions: string[]}} Me
 */

/** Events arriving within this many milliseconds reload the list once. */
const COALESCE_MS = 150;

/** @type {Record<string, string>} */
const REASONS = {
  ended_by_technician: "ended by a technician",
  consent_denied: "the person at the machine declined",
  consent_timeout: "nobody answered the consent prompt",
  agent_disconnected: "the agent went away",
  agent_refused: "the agent refused",
  server_restart: "the server restarted",
};

/** @param {string | null | undefined} reason */
export function reasonText(reason) {
  return reason ? REASONS[reason] || reason.replaceAll("_", " ") : "";
}

/**
 * @param {HTMLElement} main
 * @param {{me: Me}} context
 */
export async function render(main, { me }) {
  const liveOnly = h("input", { type: "checkbox", id: "sessions-live" });
  const status = h("p", { class: "error", role: "alert", hidden: true });
  const list = h("div", { id: "session-list" });
  const live = statusLine();
  main.append(
    h("div", { class: "toolbar" }, h("label", { class: "inline" }, liveOnly, " Active only"), h("span", { class: "toolbar-status" }, live.el)),
    status,
    list,
  );

  /** @type {Map<string, string>} */
  let names = new Map();
  /** @type {Session[]} */
  let last = [];
  /** @type {Map<string, string>} */
  let people = new Map([[me.id, me.display_name || me.username]]);

  async function refresh() {
    try {
      /** @type {[Session[], {id: string, name: string}[]]} */
      const [sessions, machines] = await Promise.all([
        api("GET", `/api/sessions${liveOnly.checked ? "?live=true" : ""}`),
        api("GET", "/api/machines"),
      ]);
      names = new Map(machines.map((m) => [m.id, m.name]));
      if (me.role === "admin" && people.size <= 1) {
        /** @type {{id: string, username: string, display_name?: string | null}[]} */
        const users = await api("GET", "/api/users");
        people = new Map(users.map((u) => [u.id, u.display_name || u.username]));
      }
      status.hidden = true;
      last = sessions;
      draw(sessions);
    } catch (error) {
      status.textContent = `Cannot load sessions: ${/** @type {Error} */ (error).message}`;
      status.hidden = false;
    }
  }

  /** @param {Session} s */
  const machineName = (s) => names.get(s.machine_id) || s.machine_id.slice(0, 8);

  /** @param {Session[]} sessions */
  function draw(sessions) {
    /** @param {Session} s */
    const isLive = (s) => s.state !== "ended";
    updateTable(
      list,
        [
          ["State", (s) => h("span", { class: `badge state-${s.state}` }, s.state.replaceAll("_", " "))],
          ["Machine", (s) => machineName(s)],
          ["Technician", (s) => (s.technician_id ? people.get(s.technician_id) || s.technician_id.slice(0, 8) : "—")],
          ["Scope", (s) => s.scope],
          ["Started", (s) => when(s.started_at || s.created_at)],
          [
            "Duration",
            (s) =>
              s.started_at
                ? duration(((s.ended_at ? new Date(s.ended_at) : new Date()).getTime() - new Date(s.started_at).getTime()) / 1000)
                : "—",
          ],
          ["End reason", (s) => reasonText(s.end_reason) || "—"],
          [
            "",
            (s) =>
              isLive(s)
                ? h(
                    "div",
                    { class: "actions" },
                    s.scope === "control" && can(me, "sessions.control")
                      ? h("a", { class: "button primary", href: `/viewer/${s.id}?scope=control`, "aria-label": `Join (session on ${machineName(s)})`, dataset: { focusKey: "join" } }, "Join")
                      : null,
                    h("a", { class: "button", href: `/viewer/${s.id}?scope=view`, "aria-label": `Watch (session on ${machineName(s)})`, dataset: { focusKey: "watch" } }, "Watch"),
                    confirmButton(
                      "End",
                      "End now?",
                      async () => {
                        try {
                          await api("DELETE", `/api/sessions/${s.id}`);
                        } catch (error) {
                          status.textContent = `Cannot end the session: ${/** @type {Error} */ (error).message}`;
                          status.hidden = false;
                        }
                        await refresh();
                      },
                      { dataset: { focusKey: "end" } },
                      `session on ${machineName(s)}`,
                    ),
                  )
                : null,
          ],
        ],
        sessions,
        {
          key: (s) => s.id,
          // The machine's name and the running duration are drawn from outside the row.
          sig: (s) => JSON.stringify(s) + machineName(s) + (s.ended_at ? "" : Math.floor(Date.now() / 60000)),
          caption: "Sessions",
          empty: "No sessions yet.",
          rowAttrs: (s) => ({ dataset: { sessionId: s.id } }),
        },
    );
  }

  const reload = coalesce(() => void refresh(), COALESCE_MS);
  liveOnly.addEventListener("change", () => void refresh());
  const unsubscribe = subscribe({
    change: (change) => {
      if (change.kind.startsWith("session.") || change.kind === "machine.changed") reload();
    },
    resync: refresh,
  });
  await refresh();
  // Running durations grow without any event.
  const tick = setInterval(() => draw(last), 30000);
  return () => {
    unsubscribe();
    live.stop();
    clearInterval(tick);
  };
}
