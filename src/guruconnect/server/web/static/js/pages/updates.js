// @ts-check
// Agent updates (admins): published releases, and policies that pin or pause updates for
// the whole tenant, one client, or one machine. Releases are published and signed with the
// CLI on the operator's machine; this page never sees a signing key.
import { api } from "../api.js";
import { confirmButton, h, replace, table, when } from "../dom.js";

/**
 * @typedef {import("./machines.js").Machine} Machine
 * @typedef {{version: string, platform: string, arch: string, channel: string, sha256: string,
 *   key_id: string | null, created_at: string, expires_at: string | null}} Release
 * @typedef {{id: string, machine_id: string | null, client_name: string | null,
 *   pinned_version: string | null, paused: boolean}} Policy
 */

/** @param {HTMLElement} main */
export async function render(main) {
  const status = h("p", { class: "error", role: "alert", hidden: true });
  const notice = h("p", { class: "ok", role: "status", hidden: true });
  const releaseList = h("div", { id: "release-list" });
  const policyList = h("div", { id: "policy-list" });
  /** @type {Machine[]} */
  let machines = [];

  /**
   * @param {string} text
   * @param {boolean} [ok]
   */
  const say = (text, ok = true) => {
    (ok ? notice : status).textContent = text;
    (ok ? notice : status).hidden = false;
    (ok ? status : notice).hidden = true;
  };

  async function refresh() {
    try {
      const [releases, policies, found] = await Promise.all([
        api("GET", "/api/releases"),
        api("GET", "/api/update-policies"),
        api("GET", "/api/machines"),
      ]);
      machines = found;
      drawMachines();
      draw(releases, policies);
    } catch (error) {
      say(`Cannot load updates: ${/** @type {Error} */ (error).message}`, false);
    }
  }

  /** @param {Policy} p */
  function scopeOf(p) {
    if (p.machine_id) {
      const m = machines.find((x) => x.id === p.machine_id);
      return `Machine ${m ? m.name : p.machine_id.slice(0, 8)}`;
    }
    if (p.client_name) return `Client ${p.client_name}`;
    return "All machines";
  }

  /**
   * @param {Release[]} releases
   * @param {Policy[]} policies
   */
  function draw(releases, policies) {
    replace(
      releaseList,
      table(
        [
          ["Version", (r) => r.version],
          ["Platform", (r) => `${r.platform}/${r.arch}`],
          ["Channel", (r) => r.channel],
          ["SHA-256", (r) => h("code", { title: r.sha256 }, `${r.sha256.slice(0, 16)}…`)],
          ["Signed by", (r) => h("code", {}, r.key_id || "—")],
          ["Published", (r) => when(r.created_at)],
          ["Expires", (r) => when(r.expires_at)],
        ],
        releases,
        { empty: "No releases yet: publish one with guruconnect admin release publish." },
      ),
    );
    replace(
      policyList,
      table(
        [
          ["Applies to", scopeOf],
          ["Pinned to", (p) => p.pinned_version || "newest"],
          ["Updates", (p) => h("span", { class: `badge ${p.paused ? "offline" : "online"}` }, p.paused ? "paused" : "on")],
          [
            "",
            (p) =>
              confirmButton("Remove", "Remove now?", async () => {
                try {
                  await api("DELETE", `/api/update-policies/${p.id}`);
                  say("Policy removed");
                } catch (error) {
                  say(`Remove failed: ${/** @type {Error} */ (error).message}`, false);
                }
                await refresh();
              }),
          ],
        ],
        policies,
        { empty: "No policies: every machine is offered the newest release.", rowAttrs: (p) => ({ dataset: { policyId: p.id } }) },
      ),
    );
  }

  const scope = h(
    "select",
    { id: "policy-scope", "aria-label": "Applies to", onchange: () => showScope() },
    h("option", { value: "tenant" }, "All machines"),
    h("option", { value: "client" }, "One client"),
    h("option", { value: "machine" }, "One machine"),
  );
  const client = h("input", { id: "policy-client", placeholder: "Client name", "aria-label": "Client name", maxlength: 255, hidden: true });
  const machine = h("select", { id: "policy-machine", "aria-label": "Machine", hidden: true });
  const pinned = h("input", { id: "policy-pinned", placeholder: "Pin to version (empty: newest)", "aria-label": "Pinned version", maxlength: 64 });
  const paused = h("input", { id: "policy-paused", type: "checkbox" });
  const showScope = () => {
    client.hidden = scope.value !== "client";
    machine.hidden = scope.value !== "machine";
  };
  const drawMachines = () =>
    replace(machine, machines.filter((m) => !m.ad_hoc).map((m) => h("option", { value: m.id }, m.name)));

  const form = h(
    "form",
    {
      class: "card form-grid",
      id: "policy-form",
      onsubmit: async (/** @type {SubmitEvent} */ event) => {
        event.preventDefault();
        /** @type {{pinned_version: string | null, paused: boolean, client_name?: string, machine_id?: string}} */
        const body = { pinned_version: pinned.value.trim() || null, paused: paused.checked };
        if (scope.value === "client") body.client_name = client.value.trim();
        if (scope.value === "machine") body.machine_id = machine.value;
        try {
          await api("PUT", "/api/update-policies", body);
          say("Policy saved");
          pinned.value = "";
          paused.checked = false;
        } catch (error) {
          say(`Save failed: ${/** @type {Error} */ (error).message}`, false);
        }
        await refresh();
      },
    },
    h("h2", {}, "Update policy"),
    scope,
    client,
    machine,
    pinned,
    h("label", {}, paused, " Pause updates"),
    h("button", { type: "submit", class: "primary" }, "Save policy"),
  );
  const announce = h(
    "button",
    {
      type: "button",
      id: "announce",
      onclick: async () => {
        try {
          const result = await api("POST", "/api/releases/announce");
          say(`Offered to ${result.offered} connected agent${result.offered === 1 ? "" : "s"}`);
        } catch (error) {
          say(`Offer failed: ${/** @type {Error} */ (error).message}`, false);
        }
      },
    },
    "Offer updates now",
  );

  main.append(
    status,
    notice,
    h("section", {}, h("h2", {}, "Releases"), releaseList, h("div", { class: "toolbar" }, announce)),
    form,
    h("section", {}, h("h2", {}, "Policies"), policyList),
  );
  await refresh();
}
