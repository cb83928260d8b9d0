// Active and recent sessions: state, machine, technician, duration, end reason; join, end.
import { api, can } from "../api.js";
import { confirmButton, duration, h, replace, table, when } from "../dom.js";

export const POLL_MS = 3000;

const REASONS = {
  ended_by_technician: "ended by a technician",
  consent_denied: "the person at the machine declined",
  consent_timeout: "nobody answered the consent prompt",
  agent_disconnected: "the agent went away",
  agent_refused: "the agent refused",
  server_restart: "the server restarted",
};

export function reasonText(reason) {
  return reason ? REASONS[reason] || reason.replaceAll("_", " ") : "";
}

export async function render(main, { me }) {
  const liveOnly = h("input", { type: "checkbox", id: "sessions-live" });
  const status = h("p", { class: "error", role: "alert", hidden: true });
  const list = h("div", { id: "session-list" });
  main.append(
    h("div", { class: "toolbar" }, h("label", { class: "inline" }, liveOnly, " Active only")),
    status,
    list,
  );

  let names = new Map();
  let people = new Map([[me.id, me.display_name || me.username]]);
  let stopped = false;
  let timer = 0;

  async function refresh() {
    try {
      const [sessions, machines] = await Promise.all([
        api("GET", `/api/sessions${liveOnly.checked ? "?live=true" : ""}`),
        api("GET", "/api/machines"),
      ]);
      names = new Map(machines.map((m) => [m.id, m.name]));
      if (me.role === "admin" && people.size <= 1) {
        const users = await api("GET", "/api/users");
        people = new Map(users.map((u) => [u.id, u.display_name || u.username]));
      }
      status.hidden = true;
      draw(sessions);
    } catch (error) {
      status.textContent = `Cannot load sessions: ${error.message}`;
      status.hidden = false;
    }
    if (!stopped) timer = setTimeout(refresh, POLL_MS);
  }

  function draw(sessions) {
    const live = (s) => s.state !== "ended";
    replace(
      list,
      table(
        [
          ["State", (s) => h("span", { class: `badge state-${s.state}` }, s.state.replaceAll("_", " "))],
          ["Machine", (s) => names.get(s.machine_id) || s.machine_id.slice(0, 8)],
          ["Technician", (s) => (s.technician_id ? people.get(s.technician_id) || s.technician_id.slice(0, 8) : "—")],
          ["Scope", (s) => s.scope],
          ["Started", (s) => when(s.started_at || s.created_at)],
          [
            "Duration",
            (s) =>
              s.started_at
                ? duration(((s.ended_at ? new Date(s.ended_at) : new Date()) - new Date(s.started_at)) / 1000)
                : "—",
          ],
          ["End reason", (s) => reasonText(s.end_reason) || "—"],
          [
            "",
            (s) =>
              live(s)
                ? h(
                    "div",
                    { class: "actions" },
                    s.scope === "control" && can(me, "sessions.control")
                      ? h("a", { class: "button primary", href: `/viewer/${s.id}?scope=control` }, "Join")
                      : null,
                    h("a", { class: "button", href: `/viewer/${s.id}?scope=view` }, "Watch"),
                    confirmButton("End", "End now?", async () => {
                      try {
                        await api("DELETE", `/api/sessions/${s.id}`);
                      } catch (error) {
                        status.textContent = `Cannot end the session: ${error.message}`;
                        status.hidden = false;
                      }
                      clearTimeout(timer);
                      await refresh();
                    }),
                  )
                : null,
          ],
        ],
        sessions,
        { empty: "No sessions yet.", rowAttrs: (s) => ({ dataset: { sessionId: s.id } }) },
      ),
    );
  }

  liveOnly.addEventListener("change", () => {
    clearTimeout(timer);
    refresh();
  });
  await refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
