// Machines the user may reach, refreshed every few seconds (no reload needed), with a
// search box, an online/offline filter and the Connect buttons.
import { api, can } from "../api.js";
import { ago, h, replace, table } from "../dom.js";

export const POLL_MS = 2000;

/** A name the agent reported: isolated from the text around it (a right-to-left name
 * cannot reorder its neighbours or disguise itself), cut with an ellipsis so a long one
 * cannot push the Connect buttons off-screen; the title shows it whole. */
function agentText(value, tag = "bdi") {
  if (!value) return "—";
  return h(tag, { class: "agent-text", dir: "auto", title: value }, value);
}

function matches(machine, query) {
  if (!query) return true;
  return [machine.name, machine.hostname, machine.os, machine.client_name, machine.agent_version]
    .filter(Boolean)
    .some((value) => value.toLowerCase().includes(query));
}

export async function render(main, { me }) {
  const search = h("input", { type: "search", id: "machine-search", placeholder: "Search name, hostname, OS, client…", "aria-label": "Search machines" });
  const filter = h(
    "select",
    { id: "machine-filter", "aria-label": "Show" },
    h("option", { value: "all" }, "All machines"),
    h("option", { value: "online" }, "Online"),
    h("option", { value: "offline" }, "Offline"),
  );
  const status = h("p", { class: "error", role: "alert", hidden: true });
  const list = h("div", { id: "machine-list" });
  const summary = h("span", { class: "muted", id: "machine-summary" });
  main.append(h("div", { class: "toolbar" }, search, filter, summary), status, list);

  let machines = [];
  let stopped = false;
  let timer = 0;

  const openViewer = (machine, scope) => async (event) => {
    event.target.disabled = true;
    status.hidden = true;
    try {
      // The viewer is a separate page; a full navigation leaves the dashboard's timers.
      const session = await api("POST", `/api/machines/${machine.id}/sessions`, { scope });
      location.assign(`/viewer/${session.id}?scope=${scope}`);
    } catch (error) {
      status.textContent = `Cannot connect to ${machine.name}: ${error.message}`;
      status.hidden = false;
      event.target.disabled = false;
    }
  };

  function draw() {
    const query = search.value.trim().toLowerCase();
    const shown = machines.filter(
      (m) =>
        matches(m, query) &&
        (filter.value === "all" || (filter.value === "online") === m.online),
    );
    const online = machines.filter((m) => m.online).length;
    summary.textContent = `${online} online of ${machines.length}`;
    replace(
      list,
      table(
        [
          ["Status", (m) => h("span", { class: `badge ${m.online ? "online" : "offline"}` }, m.online ? "Online" : "Offline")],
          ["Name", (m) => h("strong", {}, agentText(m.name))],
          ["Hostname", (m) => agentText(m.hostname)],
          ["OS", (m) => agentText(m.os)],
          ["Agent", (m) => agentText(m.agent_version)],
          ["Client", (m) => (m.client_name ? agentText(m.client_name) : m.ad_hoc ? "support code" : "—")],
          ["Last seen", (m) => (m.online ? "now" : ago(m.last_seen_at))],
          [
            "Connect",
            (m) =>
              h(
                "div",
                { class: "actions" },
                h("button", { type: "button", class: "primary", disabled: !m.online || !can(me, "sessions.control"), onclick: openViewer(m, "control"), title: "View and control" }, "Control"),
                h("button", { type: "button", disabled: !m.online, onclick: openViewer(m, "view"), title: "View only" }, "View"),
              ),
          ],
        ],
        shown,
        {
          empty: machines.length ? "No machine matches." : "No machines yet. Issue an agent key or a support code to add one.",
          rowAttrs: (m) => ({ dataset: { machineId: m.id }, class: m.online ? "" : "is-offline" }),
        },
      ),
    );
  }

  async function refresh() {
    try {
      machines = await api("GET", "/api/machines");
      machines.sort((a, b) => Number(b.online) - Number(a.online) || a.name.localeCompare(b.name));
      status.hidden = true;
      draw();
    } catch (error) {
      status.textContent = `Cannot load machines: ${error.message}`;
      status.hidden = false;
    }
    if (!stopped) timer = setTimeout(refresh, POLL_MS);
  }

  search.addEventListener("input", draw);
  filter.addEventListener("change", draw);
  await refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
