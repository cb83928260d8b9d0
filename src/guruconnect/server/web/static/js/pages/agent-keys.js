// @ts-check
// Per-agent keys: issue one (shown once, with a copy button and install commands), list,
// revoke.
import { api } from "../api.js";
import { confirmButton, h, replace, table, when } from "../dom.js";

// With a published release: download, verify the SHA-256, install as a service, built by
// the server from its public URL; the key is filled in here and never sent back.
// Without one, the agent must already be installed (the key goes in the environment, not
// on the command line, where ps would show it).
/**
 * @typedef {{id: string, prefix: string, label: string | null, machine_id: string | null,
 *   created_at: string, last_used_at: string | null, revoked_at: string | null}} AgentKey
 */

/**
 * @param {string} key
 * @param {string | null | undefined} serverUrl
 * @returns {Promise<[string, string][]>}
 */
async function installCommands(key, serverUrl) {
  /** @type {{placeholder: string, linux: string | null, windows: string | null} | null} */
  let published = null;
  try {
    published = await api("GET", "/api/install-commands");
  } catch {
    published = null;
  }
  const placeholder = published ? published.placeholder : "";
  /** @param {string} text */
  const fill = (text) => text.split(placeholder).join(key);
  // The configured public URL when there is one: what agents must use behind a proxy.
  const server = serverUrl || location.origin;
  return [
    [
      "Linux",
      published && published.linux
        ? fill(published.linux)
        : `GURUCONNECT_AGENT_KEY=${key} guruconnect agent --server ${server}`,
    ],
    [
      "Windows (PowerShell)",
      published && published.windows
        ? fill(published.windows)
        : `$env:GURUCONNECT_AGENT_KEY="${key}"; & "$env:ProgramFiles\\GuruConnect\\guruconnect.exe" agent --server ${server}`,
    ],
  ];
}

/**
 * A read-only field and its Copy button, both named after what they hold.
 * @param {string} id
 * @param {string} text
 * @param {string} what
 */
function copyable(id, text, what) {
  const multiline = text.includes("\n");
  const field = multiline
    ? h("textarea", { id, readonly: true, value: text, class: "mono", rows: text.split("\n").length, "aria-label": what })
    : h("input", { id, readonly: true, value: text, class: "mono", "aria-label": what });
  const done = h("span", { class: "ok copied", "aria-live": "polite" });
  const button = h("button", { type: "button", "aria-label": `Copy (${what})` }, "Copy");
  button.addEventListener("click", async () => {
    field.select();
    try {
      await navigator.clipboard.writeText(text);
      done.textContent = "Copied";
    } catch {
      done.textContent = "Press Ctrl+C to copy";
    }
  });
  return h("div", { class: "copy-row" }, field, button, done);
}

/** @param {HTMLElement} main */
export async function render(main) {
  const status = h("p", { class: "error", role: "alert", hidden: true });
  const label = h("input", { id: "key-label", placeholder: "e.g. reception PC", maxlength: 255 });
  const issue = h("button", { type: "submit", class: "primary" }, "Issue a key");
  const fresh = h("div", { id: "issued-key" });
  const list = h("div", { id: "key-list" });
  /** @type {Map<string, string>} */
  let machines = new Map();

  async function refresh() {
    try {
      /** @type {[AgentKey[], {id: string, name: string}[]]} */
      const [keys, found] = await Promise.all([api("GET", "/api/agent-keys"), api("GET", "/api/machines")]);
      machines = new Map(found.map((m) => [m.id, m.name]));
      draw(keys);
    } catch (error) {
      status.textContent = `Cannot load agent keys: ${/** @type {Error} */ (error).message}`;
      status.hidden = false;
    }
  }

  /** @param {AgentKey[]} keys */
  function draw(keys) {
    replace(
      list,
      table(
        [
          ["Key", (k) => h("code", {}, `${k.prefix}…`)],
          ["Label", (k) => k.label || "—"],
          ["Machine", (k) => (k.machine_id ? machines.get(k.machine_id) || k.machine_id.slice(0, 8) : "not connected yet")],
          ["Issued", (k) => when(k.created_at)],
          ["Last used", (k) => when(k.last_used_at)],
          ["State", (k) => h("span", { class: `badge ${k.revoked_at ? "offline" : "online"}` }, k.revoked_at ? "revoked" : "active")],
          [
            "",
            (k) =>
              k.revoked_at
                ? null
                : confirmButton(
                    "Revoke",
                    "Revoke now?",
                    async () => {
                      try {
                        await api("DELETE", `/api/agent-keys/${k.id}`);
                      } catch (error) {
                        status.textContent = `Cannot revoke: ${/** @type {Error} */ (error).message}`;
                        status.hidden = false;
                      }
                      await refresh();
                    },
                    {},
                    `key ${k.prefix}…${k.label ? `, ${k.label}` : ""}`,
                  ),
          ],
        ],
        keys,
        { empty: "No agent keys yet.", rowAttrs: (k) => ({ dataset: { keyId: k.id } }) },
      ),
    );
  }

  const form = h(
    "form",
    {
      class: "toolbar",
      onsubmit: async (/** @type {SubmitEvent} */ event) => {
        event.preventDefault();
        issue.disabled = true;
        status.hidden = true;
        try {
          const key = await api("POST", "/api/agent-keys", { label: label.value.trim() || null });
          label.value = "";
          const commands = await installCommands(key.key, key.server_url);
          replace(
            fresh,
            h(
              "section",
              { class: "card key-card" },
              h("h2", {}, "New agent key"),
              h("p", { class: "warning" }, "Copy it now: it is shown only this once. The server keeps only a hash."),
              copyable("new-key", key.key, "the new agent key"),
              commands.map(([platform, command], i) => [
                h("h3", {}, platform),
                copyable(`install-${i}`, command, `the ${platform} install command`),
              ]),
              h("button", { type: "button", class: "link", onclick: () => replace(fresh) }, "Done, hide the key"),
            ),
          );
          await refresh();
        } catch (error) {
          status.textContent = `Cannot issue a key: ${/** @type {Error} */ (error).message}`;
          status.hidden = false;
        } finally {
          issue.disabled = false;
        }
      },
    },
    h("label", { class: "field grow" }, h("span", {}, "Label of the new key"), label),
    issue,
  );
  main.append(form, status, fresh, list);
  await refresh();
  return () => replace(fresh); // leaving the page forgets the key
}
