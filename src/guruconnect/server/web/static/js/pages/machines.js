// @ts-check
// Machines the user may reach, kept current by the console's event stream (live.js): a
// machine that comes online, goes offline or changes is re-read and only its row is
// redrawn, so the keyboard focus and the scroll position stay where they were. A search
// box, online/offline, client and site filters, and the Control/View buttons.
import { api, can } from "../api.js";
import { ago, h, updateTable } from "../dom.js";
import { coalesce, statusLine, subscribe } from "../live.js";
import { openViewer as openViewerTab } from "../viewer/open.js";

/**
 * @typedef {{id: string, name: string, client_name: string | null, site_name?: string | null,
 *   hostname: string | null, os: string | null, agent_version: string | null, ad_hoc: boolean,
 *   online: boolean, last_seen_at: string | null}} Machine
 * @typedef {{id: string, username: string, display_name?: string | null, role: string,
 *   permissions: string[]}} Me
 */

/** More machines changed at once than this: reload the list instead of each row. */
const BULK = 25;
/** Changes arriving within this many milliseconds are read together. */
const COALESCE_MS = 100;
const NO_CLIENT = "\u0000none";

/**
 * A name the agent reported: isolated from the text around it (a right-to-left name
 * cannot reorder its neighbours or disguise itself), cut with an ellipsis so a long one
 * cannot push the Connect buttons off-screen; the title shows it whole.
 * @param {string | null | undefined} value
 */
function agentText(value) {
  if (!value) return "—";
  return h("bdi", { class: "agent-text", dir: "auto", title: value }, value);
}

/**
 * @param {Machine} machine
 * @param {string} query
 */
function matches(machine, query) {
  if (!query) return true;
  return [machine.name, machine.hostname, machine.os, machine.client_name, machine.site_name, machine.agent_version]
    .filter(Boolean)
    .some((value) => String(value).toLowerCase().includes(query));
}

/**
 * @param {Machine} a
 * @param {Machine} b
 */
function order(a, b) {
  return Number(b.online) - Number(a.online) || a.name.localeCompare(b.name);
}

/**
 * @param {HTMLSelectElement} select
 * @param {string} all
 * @param {string[]} values
 * @param {boolean} withNone
 */
function fillOptions(select, all, values, withNone) {
  const wanted = ["", ...values, ...(withNone ? [NO_CLIENT] : [])];
  const current = [...select.options].map((o) => o.value);
  if (wanted.join("\n") === current.join("\n")) return;
  const chosen = select.value;
  select.replaceChildren(
    ...wanted.map((value) =>
      h("option", { value }, value === "" ? all : value === NO_CLIENT ? "None / support codes" : value),
    ),
  );
  select.value = wanted.includes(chosen) ? chosen : "";
}

/**
 * @param {HTMLElement} main
 * @param {{me: Me, navigate: (path: string) => void}} context
 */
export async function render(main, { me, navigate }) {
  const search = h("input", { type: "search", id: "machine-search", placeholder: "Name, hostname, OS, client…" });
  const filter = h(
    "select",
    { id: "machine-filter" },
    h("option", { value: "all" }, "All machines"),
    h("option", { value: "online" }, "Online"),
    h("option", { value: "offline" }, "Offline"),
  );
  const client = h("select", { id: "machine-client" }, h("option", { value: "" }, "All clients"));
  const site = h("select", { id: "machine-site" }, h("option", { value: "" }, "All sites"));
  const siteField = h("label", { class: "field", hidden: true }, h("span", {}, "Site"), site);
  const status = h("p", { class: "error", role: "alert", hidden: true });
  const list = h("div", { id: "machine-list" });
  const summary = h("span", { class: "muted", id: "machine-summary", role: "status" });
  const live = statusLine();
  main.append(
    h(
      "div",
      { class: "toolbar" },
      h("label", { class: "field grow" }, h("span", {}, "Search machines"), search),
      h("label", { class: "field" }, h("span", {}, "Show"), filter),
      h("label", { class: "field" }, h("span", {}, "Client"), client),
      siteField,
      h("span", { class: "toolbar-status" }, summary, " ", live.el),
    ),
    status,
    list,
  );

  /** @type {Map<string, Machine>} */
  const machines = new Map();
  const controlAllowed = can(me, "sessions.control");

  /**
   * @param {Machine} machine
   * @param {"control" | "view"} scope
   * @returns {(event: Event) => Promise<void>}
   */
  const openViewer = (machine, scope) => async (event) => {
    const button = /** @type {HTMLButtonElement} */ (event.currentTarget);
    button.disabled = true;
    status.hidden = true;
    try {
      const session = await api("POST", `/api/machines/${machine.id}/sessions`, { scope });
      // In a tab of its own: this list stays where it was, ready for the next machine.
      if (openViewerTab(session.id, scope, "machines") === "tab") button.disabled = false;
    } catch (error) {
      status.textContent = `Cannot connect to ${machine.name}: ${/** @type {Error} */ (error).message}`;
      status.hidden = false;
      button.disabled = false;
    }
  };

  function draw() {
    const all = [...machines.values()];
    const clients = [...new Set(all.map((m) => m.client_name).filter((c) => !!c))].sort();
    fillOptions(client, "All clients", /** @type {string[]} */ (clients), all.some((m) => !m.client_name));
    const sites = [...new Set(all.filter((m) => !client.value || m.client_name === client.value).map((m) => m.site_name).filter((s) => !!s))].sort();
    siteField.hidden = !all.some((m) => m.site_name);
    fillOptions(site, "All sites", /** @type {string[]} */ (sites), false);

    const query = search.value.trim().toLowerCase();
    const shown = all
      .filter(
        (m) =>
          matches(m, query) &&
          (filter.value === "all" || (filter.value === "online") === m.online) &&
          (!client.value || (client.value === NO_CLIENT ? !m.client_name : m.client_name === client.value)) &&
          (!site.value || m.site_name === site.value),
      )
      .sort(order);
    const online = all.filter((m) => m.online).length;
    summary.textContent = `${online} online of ${all.length}`;
    updateTable(
      list,
      [
        ["Status", (m) => h("span", { class: `badge ${m.online ? "online" : "offline"}` }, m.online ? "Online" : "Offline")],
        [
          "Name",
          (m) =>
            h(
              "a",
              {
                href: `/machines/${encodeURIComponent(m.id)}`,
                class: "machine-link",
                title: `Manage ${m.name}`,
                "data-focus-key": `name-${m.id}`,
                onclick: (/** @type {MouseEvent} */ event) => {
                  if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
                  event.preventDefault();
                  navigate(`/machines/${m.id}`);
                },
              },
              h("strong", {}, agentText(m.name)),
            ),
        ],
        ["Hostname", (m) => agentText(m.hostname)],
        ["OS", (m) => agentText(m.os)],
        ["Agent", (m) => agentText(m.agent_version)],
        [
          "Client",
          (m) =>
            m.client_name
              ? [agentText(m.client_name), m.site_name ? h("span", { class: "muted site" }, " / ", agentText(m.site_name)) : null]
              : m.ad_hoc
                ? "support code"
                : "—",
        ],
        ["Last seen", (m) => (m.online ? "now" : ago(m.last_seen_at))],
        [
          "Connect",
          (m) =>
            h(
              "div",
              { class: "actions" },
              h(
                "button",
                {
                  type: "button",
                  class: "primary",
                  disabled: !m.online || !controlAllowed,
                  onclick: openViewer(m, "control"),
                  "aria-label": `Control ${m.name}`,
                  title: `View and control ${m.name}`,
                  dataset: { focusKey: "control" },
                },
                "Control",
              ),
              h(
                "button",
                {
                  type: "button",
                  disabled: !m.online,
                  onclick: openViewer(m, "view"),
                  "aria-label": `View ${m.name}`,
                  title: `View ${m.name} only`,
                  dataset: { focusKey: "view" },
                },
                "View",
              ),
            ),
        ],
      ],
      shown,
      {
        key: (m) => m.id,
        sig: (m) => JSON.stringify(m) + (m.online ? "" : ago(m.last_seen_at)),
        caption: "Machines",
        empty: machines.size ? "No machine matches." : "No machines yet. Issue an agent key or a support code to add one.",
        rowAttrs: (m) => ({ dataset: { machineId: m.id }, class: m.online ? "" : "is-offline" }),
      },
    );
  }

  async function refresh() {
    try {
      /** @type {Machine[]} */
      const found = await api("GET", "/api/machines");
      machines.clear();
      for (const m of found) machines.set(m.id, m);
      status.hidden = true;
      draw();
    } catch (error) {
      status.textContent = `Cannot load machines: ${/** @type {Error} */ (error).message}`;
      status.hidden = false;
    }
  }

  /** @type {Set<string>} */
  const pending = new Set();
  const flush = coalesce(async () => {
    const ids = [...pending];
    pending.clear();
    if (ids.length > BULK) {
      await refresh();
      return;
    }
    await Promise.all(
      ids.map(async (id) => {
        try {
          machines.set(id, await api("GET", `/api/machines/${id}`));
        } catch (error) {
          // Gone (deleted, or no longer reachable by this user): the row goes too.
          if (/** @type {{status?: number}} */ (error).status === 404) machines.delete(id);
        }
      }),
    );
    draw();
  }, COALESCE_MS);

  search.addEventListener("input", draw);
  filter.addEventListener("change", draw);
  client.addEventListener("change", draw);
  site.addEventListener("change", draw);
  const unsubscribe = subscribe({
    change: (change) => {
      if (!change.kind.startsWith("machine.") || !change.machine_id) return;
      pending.add(change.machine_id);
      flush();
    },
    resync: refresh,
  });
  await refresh();
  // "Last seen 3 min ago" ages without any event.
  const tick = setInterval(draw, 30000);
  return () => {
    unsubscribe();
    live.stop();
    clearInterval(tick);
  };
}
