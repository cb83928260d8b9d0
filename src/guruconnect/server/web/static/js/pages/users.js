// @ts-check
// Users of the admin's tenant: create, disable, set role, client access, revoke tokens.
import { api } from "../api.js";
import { confirmButton, h, replace, table, when } from "../dom.js";

/**
 * @typedef {import("../dashboard.js").Me} Me
 * @typedef {import("./machines.js").Machine} Machine
 * @typedef {{id: string, username: string, display_name: string | null, role: string,
 *   disabled: boolean, last_login_at: string | null,
 *   client_access: {client_names: string[], machine_ids: string[]}}} User
 */

/**
 * @param {HTMLElement} main
 * @param {{me: Me}} context
 */
export async function render(main, { me }) {
  const status = h("p", { class: "error", role: "alert", hidden: true });
  const notice = h("p", { class: "ok", role: "status", hidden: true });
  const list = h("div", { id: "user-list" });
  const editor = h("div", { id: "access-editor" });
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

  /**
   * @param {string} what
   * @param {() => Promise<unknown>} fn
   */
  async function act(what, fn) {
    try {
      await fn();
      say(what);
    } catch (error) {
      say(`${what.split(":")[0]} failed: ${/** @type {Error} */ (error).message}`, false);
    }
    await refresh();
  }

  // -- create -------------------------------------------------------------------------
  // Visible labels, not placeholders: they stay readable while typing and are announced.
  const username = h("input", { id: "new-username", required: true, autocomplete: "off" });
  const displayName = h("input", { id: "new-display-name" });
  const password = h("input", { id: "new-password", type: "password", required: true, minlength: 12, autocomplete: "new-password" });
  const role = h("select", { id: "new-role" }, h("option", { value: "technician" }, "Technician"), h("option", { value: "admin" }, "Admin"));
  const create = h(
    "form",
    {
      class: "card form-grid",
      id: "create-user",
      onsubmit: async (/** @type {SubmitEvent} */ event) => {
        event.preventDefault();
        const name = username.value.trim();
        await act(`Created ${name}`, () =>
          api("POST", "/api/users", {
            username: name,
            password: password.value,
            role: role.value,
            display_name: displayName.value.trim() || null,
          }),
        );
        if (status.hidden) {
          username.value = displayName.value = password.value = "";
        }
      },
    },
    h("h2", {}, "New user"),
    h("label", { class: "field" }, h("span", {}, "Username"), username),
    h("label", { class: "field" }, h("span", {}, "Display name (optional)"), displayName),
    h("label", { class: "field" }, h("span", {}, "Password (12+ characters)"), password),
    h("label", { class: "field" }, h("span", {}, "Role"), role),
    h("button", { type: "submit", class: "primary" }, "Create user"),
  );

  // -- client access ------------------------------------------------------------------
  /** @param {User} user */
  function editAccess(user) {
    const chosen = new Set(user.client_access.machine_ids);
    const clients = h("input", { id: "access-clients", value: user.client_access.client_names.join(", ") });
    const boxes = machines.map((m) =>
      h("label", { class: "inline" }, h("input", { type: "checkbox", value: m.id, checked: chosen.has(m.id) }), ` ${m.name}`),
    );
    replace(
      editor,
      h(
        "form",
        {
          class: "card",
          onsubmit: async (/** @type {SubmitEvent} */ event) => {
            event.preventDefault();
            const body = {
              machine_ids: boxes.map((b) => /** @type {HTMLInputElement} */ (b.querySelector("input"))).filter((i) => i.checked).map((i) => i.value),
              client_names: clients.value.split(",").map((c) => c.trim()).filter(Boolean),
            };
            await act(`Access saved for ${user.username}`, () => api("PUT", `/api/users/${user.id}/client-access`, body));
            replace(editor);
          },
        },
        h("h2", {}, `Machines ${user.username} may reach`),
        h("p", { class: "muted" }, "Every machine of the named clients, plus the machines ticked."),
        h("label", { class: "field" }, h("span", {}, "Clients (names, comma-separated)"), clients),
        h("div", { class: "checks" }, boxes.length ? boxes : h("span", { class: "muted" }, "No machines yet.")),
        h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Save access"), h("button", { type: "button", onclick: () => replace(editor) }, "Cancel")),
      ),
    );
    editor.scrollIntoView({ block: "nearest" });
  }

  // -- admin password reset (issue 16): a temporary password the user must change -------
  /** @param {User} user */
  function resetPassword(user) {
    const temporary = h("input", { id: "reset-password", type: "password", required: true, minlength: 12, autocomplete: "new-password" });
    replace(
      editor,
      h(
        "form",
        {
          class: "card form-stack",
          id: "reset-form",
          onsubmit: async (/** @type {SubmitEvent} */ event) => {
            event.preventDefault();
            await act(`Temporary password set for ${user.username}; they must change it at their next login`, () =>
              api("POST", `/api/users/${user.id}/reset-password`, { password: temporary.value }),
            );
            replace(editor);
          },
        },
        h("h2", {}, `Reset the password of ${user.username}`),
        h("p", { class: "muted" }, "Their sessions end now; at the next login they must choose a new password."),
        h("label", { for: "reset-password" }, "Temporary password (12 or more characters)"),
        temporary,
        h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Set temporary password"), h("button", { type: "button", onclick: () => replace(editor) }, "Cancel")),
      ),
    );
    temporary.focus();
  }

  // -- list ---------------------------------------------------------------------------
  /** @param {User[]} users */
  function draw(users) {
    replace(
      list,
      table(
        [
          ["User", (u) => [h("strong", {}, u.username), u.display_name ? h("div", { class: "muted" }, u.display_name) : null]],
          [
            "Role",
            (u) =>
              h(
                "select",
                {
                  "aria-label": `Role of ${u.username}`,
                  disabled: u.id === me.id,
                  onchange: (/** @type {Event & {target: HTMLSelectElement}} */ event) => act(`Role of ${u.username} set to ${event.target.value}`, () => api("PATCH", `/api/users/${u.id}`, { role: event.target.value })),
                },
                ["technician", "admin"].map((r) => h("option", { value: r, selected: u.role === r }, r)),
              ),
          ],
          ["State", (u) => h("span", { class: `badge ${u.disabled ? "offline" : "online"}` }, u.disabled ? "disabled" : "active")],
          ["Last login", (u) => when(u.last_login_at)],
          [
            "Access",
            (u) =>
              u.role === "admin"
                ? "all machines"
                : `${u.client_access.client_names.length} clients, ${u.client_access.machine_ids.length} machines`,
          ],
          [
            "",
            (u) =>
              h(
                "div",
                { class: "actions" },
                u.role === "admin" ? null : h("button", { type: "button", onclick: () => editAccess(u) }, "Access…"),
                u.id === me.id
                  ? null
                  : h(
                      "button",
                      { type: "button", onclick: () => act(`${u.username} ${u.disabled ? "enabled" : "disabled"}`, () => api("PATCH", `/api/users/${u.id}`, { disabled: !u.disabled })) },
                      u.disabled ? "Enable" : "Disable",
                    ),
                u.id === me.id ? null : h("button", { type: "button", class: "reset-password", "aria-label": `Reset password… of ${u.username}`, onclick: () => resetPassword(u) }, "Reset password…"),
                confirmButton("Revoke tokens", "Log out everywhere?", () =>
                  act(`Tokens of ${u.username} revoked`, () => api("POST", `/api/auth/revoke-user/${u.id}`)),
                ),
              ),
          ],
        ],
        users,
        { rowAttrs: (u) => ({ dataset: { username: u.username } }) },
      ),
    );
  }

  async function refresh() {
    try {
      const [users, found] = await Promise.all([api("GET", "/api/users"), api("GET", "/api/machines")]);
      machines = found;
      draw(users);
    } catch (error) {
      say(`Cannot load users: ${/** @type {Error} */ (error).message}`, false);
    }
  }

  main.append(status, notice, create, editor, list);
  await refresh();
}
