// One-time support codes: create one, show it large with its countdown, see it redeemed.
import { api } from "../api.js";
import { duration, h, replace, table, when } from "../dom.js";

export const POLL_MS = 2000;

function codeState(code) {
  if (code.redeemed_at) return "redeemed";
  if (new Date(code.expires_at) <= new Date()) return "expired";
  return "waiting";
}

export async function render(main) {
  const status = h("p", { class: "error", role: "alert", hidden: true });
  const current = h("div", { id: "current-code" });
  const list = h("div", { id: "code-list" });
  const create = h("button", { type: "button", class: "primary", id: "create-code" }, "Create a support code");
  main.append(
    h("p", { class: "muted" }, "Give the code to the customer; it works once, for a few minutes."),
    h("div", { class: "toolbar" }, create),
    status,
    current,
    h("h2", {}, "Recent codes"),
    list,
  );

  let issued = null; // the code just created: its text is shown only now
  let codes = [];
  let stopped = false;
  let pollTimer = 0;
  let tickTimer = 0;

  function drawCurrent() {
    if (!issued) {
      replace(current);
      return;
    }
    const row = codes.find((c) => c.id === issued.id) || issued;
    const state = codeState(row);
    const left = (new Date(row.expires_at) - new Date()) / 1000;
    replace(
      current,
      h(
        "section",
        { class: `card code-card code-${state}`, "aria-live": "polite" },
        h("div", { class: "code-big", id: "code-value" }, issued.code),
        state === "waiting" && issued.join_url
          ? h(
              "p",
              { class: "join-link" },
              "Link for the customer: ",
              h("a", { id: "code-join-url", href: issued.join_url, target: "_blank", rel: "noopener" }, issued.join_url),
              " ",
              h(
                "button",
                {
                  type: "button",
                  id: "copy-join-url",
                  onclick: async (event) => {
                    try {
                      await navigator.clipboard.writeText(issued.join_url);
                      event.target.textContent = "Copied";
                    } catch (error) {
                      event.target.textContent = "Copy failed: select the link";
                    }
                  },
                },
                "Copy link",
              ),
            )
          : null,
        state === "waiting"
          ? h("p", { class: "countdown", id: "code-countdown" }, `Expires in ${duration(left)}`)
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
    replace(
      list,
      table(
        [
          ["Created", (c) => when(c.created_at)],
          ["Expires", (c) => when(c.expires_at)],
          ["State", (c) => h("span", { class: `badge code-${codeState(c)}` }, codeState(c))],
          ["Session", (c) => (c.session_id ? h("a", { href: `/viewer/${c.session_id}?scope=control` }, "open") : "—")],
        ],
        codes,
        { empty: "No codes yet." },
      ),
    );
  }

  async function refresh() {
    try {
      codes = await api("GET", "/api/support-codes");
      status.hidden = true;
      drawList();
      drawCurrent();
    } catch (error) {
      status.textContent = `Cannot load support codes: ${error.message}`;
      status.hidden = false;
    }
    if (!stopped) pollTimer = setTimeout(refresh, POLL_MS);
  }

  create.addEventListener("click", async () => {
    create.disabled = true;
    try {
      issued = await api("POST", "/api/support-codes");
      codes = [issued, ...codes.filter((c) => c.id !== issued.id)];
      drawCurrent();
      drawList();
    } catch (error) {
      status.textContent = `Cannot create a code: ${error.message}`;
      status.hidden = false;
    } finally {
      create.disabled = false;
    }
  });

  tickTimer = setInterval(() => issued && drawCurrent(), 1000);
  await refresh();
  return () => {
    stopped = true;
    clearTimeout(pollTimer);
    clearInterval(tickTimer);
  };
}
