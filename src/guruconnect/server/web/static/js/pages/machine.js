// @ts-check
// One machine (/machines/<id>): rename it, file it under a client and site, notes and tags,
// its consent policy, the agent key that binds it (re-key), forget it, and its sessions.
// The server decides who may do what; controls a user may not use are left out or disabled
// only so the page does not offer what would be refused.
import { api, can } from "../api.js";
import { confirmButton, h, replace, table, when } from "../dom.js";

/**
 * @typedef {{ id: string, prefix: string, label: string | null, machine_id: string | null,
 *   created_at: string, last_used_at: string | null, revoked_at: string | null }} AgentKey
 * @typedef {{ id: string, name: string, client_id: string | null, client_name: string | null,
 *   site_id: string | null, site_name: string | null, hostname: string | null, os: string | null,
 *   agent_version: string | null, consent_policy: string, ad_hoc: boolean, online: boolean,
 *   notes: string | null, tags: string[], last_seen_at: string | null, created_at: string,
 *   agent_keys?: AgentKey[] | null }} Machine
 * @typedef {{ id: string, client_id: string, name: string }} Site
 * @typedef {{ id: string, name: string, sites: Site[] }} Client
 * @typedef {{ id: string, technician: string | null, kind: string, scope: string, state: string,
 *   created_at: string, started_at: string | null, ended_at: string | null,
 *   end_reason: string | null }} HistoryEntry
 * @typedef {{ username: string, role: string, permissions: string[] }} Me
 * @typedef {(path: string, options?: { replace?: boolean }) => void} Navigate
 */

/** The id in /machines/<id>, or null. */
export function machineIdOf(/** @type {string} */ path) {
  const match = /^\/machines\/([0-9a-f-]{36})$/i.exec(path);
  return match ? match[1] : null;
}

/** "a, b , c" -> ["a", "b", "c"] */
export function parseTags(/** @type {string} */ text) {
  return text
    .split(",")
    .map((tag) => tag.trim())
    .filter(Boolean);
}

/**
 * @param {string} id
 * @param {string} text
 * @param {Record<string, unknown>} [attrs]
 */
function labelled(id, text, attrs = {}) {
  return h("label", { for: id, ...attrs }, text);
}

/**
 * @param {HTMLElement} main
 * @param {{ me: Me, navigate: Navigate }} context
 * @returns {Promise<(() => void) | null>}
 */
export async function render(main, { me, navigate }) {
  const machineId = machineIdOf(location.pathname);
  const heading = /** @type {HTMLElement} */ (main.querySelector("h1") || main.appendChild(h("h1", {}, "Machine")));
  const back = h("p", {}, h("a", { href: "/machines", id: "back-to-machines", class: "back-link", onclick: (/** @type {MouseEvent} */ event) => {
    if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    navigate("/machines");
  } }, "← All machines"));
  const status = h("p", { class: "error", role: "alert", id: "machine-error", hidden: true });
  const saved = h("p", { class: "ok", id: "machine-saved", "aria-live": "polite" });
  main.append(back, status, saved);
  if (!machineId) {
    heading.textContent = "Machine not found";
    return null;
  }

  const isAdmin = me.role === "admin";
  const mayEdit = can(me, "sessions.control");
  const mayRekey = can(me, "agent_keys.manage");

  /** @param {string} text */
  function fail(text) {
    status.textContent = text;
    status.hidden = false;
    saved.textContent = "";
  }
  /** @param {string} text */
  function ok(text) {
    status.hidden = true;
    saved.textContent = text;
  }

  /** @type {Machine} */
  let machine;
  /** @type {Client[]} */
  let clients = [];
  try {
    machine = await api("GET", `/api/machines/${machineId}`);
  } catch (error) {
    heading.textContent = "Machine not found";
    fail(`Cannot load this machine: ${/** @type {Error} */ (error).message}`);
    return null;
  }

  // -- summary ---------------------------------------------------------------------------
  const summary = h("dl", { class: "facts", id: "machine-facts" });

  // -- details: name, notes, tags ---------------------------------------------------------
  const nameInput = /** @type {HTMLInputElement} */ (h("input", { id: "machine-name", maxlength: 255, required: true, autocomplete: "off", disabled: !mayEdit }));
  const notesInput = /** @type {HTMLTextAreaElement} */ (h("textarea", { id: "machine-notes", maxlength: 4000, rows: 4, disabled: !mayEdit }));
  const tagsInput = /** @type {HTMLInputElement} */ (h("input", { id: "machine-tags", autocomplete: "off", "aria-describedby": "machine-tags-hint", disabled: !mayEdit }));
  const saveDetails = h("button", { type: "submit", class: "primary", id: "save-details", disabled: !mayEdit }, "Save name, notes and tags");
  const details = h(
    "form",
    {
      class: "card stack",
      id: "machine-details",
      "aria-labelledby": "details-heading",
      onsubmit: async (/** @type {SubmitEvent} */ event) => {
        event.preventDefault();
        await change({ name: nameInput.value, notes: notesInput.value, tags: parseTags(tagsInput.value) }, "Saved name, notes and tags.");
      },
    },
    h("h2", { id: "details-heading" }, "Details"),
    labelled("machine-name", "Name"),
    nameInput,
    labelled("machine-notes", "Notes"),
    notesInput,
    labelled("machine-tags", "Tags"),
    tagsInput,
    h("p", { class: "muted hint", id: "machine-tags-hint" }, "Separate tags with commas, e.g. server, finance."),
    h("div", { class: "actions" }, saveDetails),
    mayEdit ? null : h("p", { class: "muted" }, "You may view this machine but not change it."),
  );

  // -- client and site (admin) ------------------------------------------------------------
  const clientSelect = /** @type {HTMLSelectElement} */ (h("select", { id: "machine-client" }));
  const siteSelect = /** @type {HTMLSelectElement} */ (h("select", { id: "machine-site" }));
  const newClient = /** @type {HTMLInputElement} */ (h("input", { id: "new-client", maxlength: 255, autocomplete: "off" }));
  const newSite = /** @type {HTMLInputElement} */ (h("input", { id: "new-site", maxlength: 255, autocomplete: "off" }));
  const grouping = isAdmin
    ? h(
        "section",
        { class: "card stack", id: "machine-grouping", "aria-labelledby": "grouping-heading" },
        h("h2", { id: "grouping-heading" }, "Client and site"),
        h(
          "form",
          {
            class: "form-grid",
            onsubmit: async (/** @type {SubmitEvent} */ event) => {
              event.preventDefault();
              await change({ client_id: clientSelect.value || null, site_id: siteSelect.value || null }, "Saved client and site.");
            },
          },
          h("div", { class: "field" }, labelled("machine-client", "Client"), clientSelect),
          h("div", { class: "field" }, labelled("machine-site", "Site"), siteSelect),
          h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", id: "save-grouping" }, "Save client and site")),
        ),
        h(
          "form",
          {
            class: "form-grid",
            onsubmit: async (/** @type {SubmitEvent} */ event) => {
              event.preventDefault();
              const name = newClient.value.trim();
              try {
                const created = await api("POST", "/api/clients", { name });
                newClient.value = "";
                await loadClients();
                clientSelect.value = created.id;
                drawSites();
                ok(`Client ${created.name} added; save to file this machine under it.`);
              } catch (error) {
                fail(`Cannot add the client: ${/** @type {Error} */ (error).message}`);
              }
            },
          },
          h("div", { class: "field" }, labelled("new-client", "New client"), newClient),
          h("div", { class: "actions" }, h("button", { type: "submit", id: "add-client" }, "Add client")),
        ),
        h(
          "form",
          {
            class: "form-grid",
            onsubmit: async (/** @type {SubmitEvent} */ event) => {
              event.preventDefault();
              if (!clientSelect.value) {
                fail("Choose a client first: a site belongs to a client.");
                return;
              }
              try {
                const created = await api("POST", "/api/sites", { client_id: clientSelect.value, name: newSite.value.trim() });
                newSite.value = "";
                await loadClients();
                siteSelect.value = created.id;
                ok(`Site ${created.name} added; save to file this machine under it.`);
              } catch (error) {
                fail(`Cannot add the site: ${/** @type {Error} */ (error).message}`);
              }
            },
          },
          h("div", { class: "field" }, labelled("new-site", "New site of the chosen client"), newSite),
          h("div", { class: "actions" }, h("button", { type: "submit", id: "add-site" }, "Add site")),
        ),
      )
    : null;

  // -- consent policy (admin) -------------------------------------------------------------
  const consentSelect = /** @type {HTMLSelectElement} */ (
    h(
      "select",
      { id: "machine-consent" },
      h("option", { value: "ask" }, "Always ask the person at the machine"),
      machine.ad_hoc ? null : h("option", { value: "unattended" }, "Unattended: connect without asking"),
    )
  );
  const consent = isAdmin
    ? h(
        "form",
        {
          class: "card stack",
          id: "machine-consent-form",
          "aria-labelledby": "consent-heading",
          onsubmit: async (/** @type {SubmitEvent} */ event) => {
            event.preventDefault();
            await change({ consent_policy: consentSelect.value }, "Saved the consent policy.");
          },
        },
        h("h2", { id: "consent-heading" }, "Consent"),
        labelled("machine-consent", "Consent policy"),
        consentSelect,
        h("div", { class: "actions" }, h("button", { type: "submit", id: "save-consent" }, "Save consent policy")),
      )
    : null;

  // -- agent key --------------------------------------------------------------------------
  const keyList = h("div", { id: "machine-keys" });
  const freshKey = h("div", { id: "machine-new-key" });
  const keys =
    mayRekey && !machine.ad_hoc
      ? h(
          "section",
          { class: "card stack", id: "machine-key-section", "aria-labelledby": "keys-heading" },
          h("h2", { id: "keys-heading" }, "Agent key"),
          keyList,
          h(
            "div",
            { class: "actions" },
            confirmButton("Re-key this machine", "Revoke its key and issue a new one?", rekey, { id: "rekey" }),
          ),
          freshKey,
        )
      : null;

  async function rekey() {
    try {
      const issued = await api("POST", `/api/machines/${machineId}/rekey`, {});
      const field = h("input", { id: "new-machine-key", readonly: true, value: issued.key, class: "mono" });
      replace(
        freshKey,
        h("p", { class: "warning" }, "The old key is revoked. Copy the new key now: it is shown only this once."),
        h("div", { class: "copy-row" }, labelled("new-machine-key", "New agent key"), field),
        h("button", { type: "button", class: "link", onclick: () => replace(freshKey) }, "Done, hide the key"),
      );
      ok("Issued a new agent key; the agent must be restarted with it.");
      await reload();
    } catch (error) {
      fail(`Cannot re-key: ${/** @type {Error} */ (error).message}`);
    }
  }

  // -- history ----------------------------------------------------------------------------
  const history = h("div", { id: "machine-history" });

  // -- forget (admin) ---------------------------------------------------------------------
  const forget = isAdmin
    ? h(
        "section",
        { class: "card stack", id: "machine-forget", "aria-labelledby": "forget-heading" },
        h("h2", { id: "forget-heading" }, "Forget this machine"),
        h(
          "p",
          { class: "muted" },
          "It leaves every list, its agent key is revoked and its agent disconnected. Its sessions stay in the audit log.",
        ),
        h(
          "div",
          { class: "actions" },
          confirmButton(
            "Forget this machine",
            "Forget it for good?",
            async () => {
              try {
                await api("DELETE", `/api/machines/${machineId}`);
                navigate("/machines");
              } catch (error) {
                fail(`Cannot forget the machine: ${/** @type {Error} */ (error).message}`);
              }
            },
            { id: "forget" },
          ),
        ),
      )
    : null;

  /** @type {(HTMLElement | null)[]} */
  const sections = [
    h("section", { class: "card", "aria-labelledby": "facts-heading" }, h("h2", { id: "facts-heading" }, "Status"), summary),
    details,
    grouping,
    consent,
    keys,
    h("section", { "aria-labelledby": "history-heading" }, h("h2", { id: "history-heading" }, "Sessions"), history),
    forget,
  ];
  main.append(...sections.filter((section) => section !== null));

  /** @param {Record<string, unknown>} patch @param {string} done */
  async function change(patch, done) {
    try {
      machine = { ...machine, ...(await api("PATCH", `/api/machines/${machineId}`, patch)) };
      drawMachine();
      ok(done);
    } catch (error) {
      fail(`Cannot save: ${/** @type {Error} */ (error).message}`);
    }
  }

  async function loadClients() {
    clients = await api("GET", "/api/clients");
    drawClients();
  }

  function drawClients() {
    const chosen = clientSelect.value || machine.client_id || "";
    replace(
      clientSelect,
      h("option", { value: "" }, "No client"),
      clients.map((c) => h("option", { value: c.id }, c.name)),
    );
    clientSelect.value = chosen;
    drawSites();
  }

  function drawSites() {
    const client = clients.find((c) => c.id === clientSelect.value);
    const chosen = siteSelect.value || machine.site_id || "";
    replace(
      siteSelect,
      h("option", { value: "" }, "No site"),
      client ? client.sites.map((s) => h("option", { value: s.id }, s.name)) : [],
    );
    siteSelect.value = client && client.sites.some((s) => s.id === chosen) ? chosen : "";
  }
  clientSelect.addEventListener("change", () => {
    siteSelect.value = "";
    drawSites();
  });

  function drawMachine() {
    heading.textContent = machine.name;
    document.title = `${machine.name} · GuruConnect`;
    /** @type {[string, string | Node][]} */
    const facts = [
      ["Status", h("span", { class: `badge ${machine.online ? "online" : "offline"}` }, machine.online ? "Online" : "Offline")],
      ["Client", machine.client_name || (machine.ad_hoc ? "support code" : "—")],
      ["Site", machine.site_name || "—"],
      ["Hostname", machine.hostname || "—"],
      ["Operating system", machine.os || "—"],
      ["Agent version", machine.agent_version || "—"],
      ["Consent", machine.consent_policy === "unattended" ? "unattended" : "always asks"],
      ["Last seen", machine.online ? "now" : when(machine.last_seen_at)],
      ["Tags", machine.tags.length ? machine.tags.join(", ") : "—"],
    ];
    replace(summary, facts.map(([term, value]) => [h("dt", {}, term), h("dd", { dir: "auto" }, value)]));
    nameInput.value = machine.name;
    notesInput.value = machine.notes || "";
    tagsInput.value = machine.tags.join(", ");
    consentSelect.value = machine.consent_policy;
    if (isAdmin) {
      clientSelect.value = machine.client_id || "";
      drawSites();
      siteSelect.value = machine.site_id || "";
    }
    if (machine.agent_keys) {
      replace(
        keyList,
        table(
          [
            ["Key", (/** @type {AgentKey} */ k) => h("code", {}, `${k.prefix}…`)],
            ["Label", (/** @type {AgentKey} */ k) => k.label || "—"],
            ["Issued", (/** @type {AgentKey} */ k) => when(k.created_at)],
            ["Last used", (/** @type {AgentKey} */ k) => when(k.last_used_at)],
            ["State", (/** @type {AgentKey} */ k) => h("span", { class: `badge ${k.revoked_at ? "offline" : "online"}` }, k.revoked_at ? "revoked" : "active")],
          ],
          machine.agent_keys,
          { empty: "No agent key is bound to this machine." },
        ),
      );
    }
  }

  async function loadHistory() {
    /** @type {HistoryEntry[]} */
    const entries = await api("GET", `/api/machines/${machineId}/sessions`);
    replace(
      history,
      table(
        [
          ["Requested", (/** @type {HistoryEntry} */ s) => when(s.created_at)],
          ["Technician", (/** @type {HistoryEntry} */ s) => s.technician || "—"],
          ["Kind", (/** @type {HistoryEntry} */ s) => s.kind.replace("_", " ")],
          ["Scope", (/** @type {HistoryEntry} */ s) => s.scope],
          ["State", (/** @type {HistoryEntry} */ s) => h("span", { class: `badge state-${s.state}` }, s.state.replace("_", " "))],
          ["Ended", (/** @type {HistoryEntry} */ s) => when(s.ended_at)],
          ["Reason", (/** @type {HistoryEntry} */ s) => (s.end_reason || "—").replace(/_/g, " ")],
        ],
        entries,
        { empty: "No sessions yet." },
      ),
    );
  }

  async function reload() {
    machine = await api("GET", `/api/machines/${machineId}`);
    drawMachine();
  }

  drawMachine();
  try {
    await Promise.all([isAdmin ? loadClients() : Promise.resolve(), loadHistory()]);
    drawMachine();
  } catch (error) {
    fail(`Cannot load: ${/** @type {Error} */ (error).message}`);
  }
  return () => replace(freshKey); // leaving the page forgets a new key
}
