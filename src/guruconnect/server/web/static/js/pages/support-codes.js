// @ts-check
// One-time support codes: create one, show it large with its countdown, see it redeemed
// the moment it is (the console's event stream, live.js, says so).
import { api } from "../api.js";
import { duration, h, replace, updateTable, when } from "../dom.js";
import { coalesce, statusLine, subscribe } from "../live.js";

/**
 * @typedef {{id: string, code?: string, join_url?: string | null, created_at: string,
 *   expires_at: string, redeemed_at: string | null, session_id: string | null}} Code
 */

/** @param {Code} code */
function codeState(code) {
  if (code.redeemed_at) return "redeemed";
  if (new Date(code.expires_at) <= new Date()) return "expired";
  return "waiting";
}

/** @param {HTMLElement} main */
export async function render(main) {
  const status = h("p", { class: "error", role: "alert", hidden: true });
  const live = statusLine();
  const current = h("div", { id: "current-code" });
  const list = h("div", { id: "code-list" });
  const create = h("button", { type: "button", class: "primary", id: "create-code" }, "Create a support code");
  main.append(
    h("p", { class: "muted" }, "Give the code to the customer; it works once, for a few minutes."),
    h("div", { class: "toolbar" }, create, h("span", { class: "toolbar-status" }, live.el)),
    status,
    current,
    h("h2", {}, "Recent codes"),
    list,
  );

  /** @type {Code | null} */
  let issued = null; // the code just created: its text is shown only now
  /** @type {Code[]} */
  let codes = [];
  /** @type {ReturnType<typeof setInterval> | undefined} */
  let tickTimer;
  /** The state last drawn in the big card: redrawn only when it changes (focus stays on Copy). */
  let drawnState = "";

  function drawCurrent() {
    if (!issued) {
      replace(current);
      return;
    }
    const shown = issued;
    const row = codes.find((c) => c.id === shown.id) || shown;
    const state = codeState(row);
    const left = (new Date(row.expires_at).getTime() - Date.now()) / 1000;
    const countdown = current.querySelector("#code-countdown");
    if (drawnState === `${shown.id}:${state}` && countdown) {
      countdown.textContent = `Expires in ${duration(left)}`;
      return;
    }
    drawnState = `${shown.id}:${state}`;
    replace(
      current,
      h(
        "section",
        { class: `card code-card code-${state}`, "aria-live": "polite" },
        h("div", { class: "code-big", id: "code-value" }, shown.code),
        state === "waiting" && shown.join_url
          ? h(
              "p",
              { class: "join-link" },
              "Link for the customer: ",
              h("a", { id: "code-join-url", href: shown.join_url, target: "_blank", rel: "noopener" }, shown.join_url),
              " ",
              h(
                "button",
                {
                  type: "button",
                  id: "copy-join-url",
                  "aria-label": "Copy the link for the customer",
                  onclick: async (/** @type {Event} */ event) => {
                    const button = /** @type {HTMLButtonElement} */ (event.currentTarget);
                    try {
                      await navigator.clipboard.writeText(shown.join_url || "");
                      button.textContent = "Copied";
                    } catch (error) {
                      button.textContent = "Copy failed: select the link";
                    }
                  },
                },
                "Copy link",
              ),
            )
          : null,
        state === "waiting"
          ? h("p", { class: "countdown", id: "code-countdown", "aria-live": "off" }, `Expires in ${duration(left)}`)
          : null,
        state === "waiting" ? h("p", { class: "muted", id: "code-state" }, "Waiting for the customer to enter it…") : null,
        state === "expired" ? h("p", { class: "error", id: "code-state" }, "Expired unused. Create a new one.") : null,
        state === "redeemed"
          ? h(
              "p",
              { class: "ok", id: "code-state" },
              `Redeemed at ${when(row.redeemed_at)}. `,
              row.session_id ? h("a", { class: "button primary", href: `/viewer/${row.session_id}?scope=control` }, "Join the session") : null,
            )
          : null,
      ),
    );
  }

  function drawList() {
    updateTable(
      list,
      [
        ["Created", (c) => when(c.created_at)],
        ["Expires", (c) => when(c.expires_at)],
        ["State", (c) => h("span", { class: `badge code-${codeState(c)}` }, codeState(c))],
        [
          "Session",
          (c) =>
            c.session_id
              ? h("a", { href: `/viewer/${c.session_id}?scope=control`, "aria-label": `Open the session of the code created ${when(c.created_at)}` }, "open")
              : "—",
        ],
      ],
      codes,
      { key: (c) => c.id, sig: (c) => JSON.stringify(c) + codeState(c), caption: "Recent support codes", empty: "No codes yet." },
    );
  }

  async function refresh() {
    try {
      codes = await api("GET", "/api/support-codes");
      status.hidden = true;
      drawList();
      drawCurrent();
    } catch (error) {
      status.textContent = `Cannot load support codes: ${/** @type {Error} */ (error).message}`;
      status.hidden = false;
    }
  }

  create.addEventListener("click", async () => {
    create.disabled = true;
    try {
      /** @type {Code} */
      const fresh = await api("POST", "/api/support-codes");
      issued = fresh;
      codes = [fresh, ...codes.filter((c) => c.id !== fresh.id)];
      drawCurrent();
      drawList();
    } catch (error) {
      status.textContent = `Cannot create a code: ${/** @type {Error} */ (error).message}`;
      status.hidden = false;
    } finally {
      create.disabled = false;
    }
  });

  const reload = coalesce(() => void refresh(), 100);
  const unsubscribe = subscribe({
    change: (change) => {
      if (change.kind === "support_code.redeemed" || change.kind === "session.ended") reload();
    },
    resync: refresh,
  });
  // The countdown, and a code expiring in the list, move without any event.
  tickTimer = setInterval(() => {
    if (issued) drawCurrent();
    drawList();
  }, 1000);
  await refresh();
  return () => {
    unsubscribe();
    live.stop();
    clearInterval(tickTimer);
  };
}
