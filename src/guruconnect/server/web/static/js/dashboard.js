// @ts-check
// The dashboard shell: who is logged in, the navigation, and which view the path shows.
import { can, logOut, setUnauthorizedHandler, whoAmI } from "./api.js";
import { h, replace } from "./dom.js";
import * as account from "./pages/account.js";
import * as agentKeys from "./pages/agent-keys.js";
import * as audit from "./pages/audit.js";
import * as login from "./pages/login.js";
import * as machine from "./pages/machine.js";
import * as machines from "./pages/machines.js";
import * as sessions from "./pages/sessions.js";
import * as supportCodes from "./pages/support-codes.js";
import * as updates from "./pages/updates.js";
import * as users from "./pages/users.js";

/**
 * @typedef {{id: string, username: string, display_name?: string | null, role: string,
 *   permissions: string[], must_change_password?: boolean, mfa_enrolment_required?: boolean}} Me
 * @typedef {{render: (main: HTMLElement, context: {me: Me, navigate: typeof navigate}) =>
 *   Promise<(() => void) | void | null | undefined>}} Page
 * @typedef {{path: string, title: string, page: Page, allowed: (me: Me) => boolean,
 *   prefix?: boolean, nav?: string}} View
 */

/** @type {View[]} */
const VIEWS = [
  { path: "/machines", title: "Machines", page: machines, allowed: (me) => can(me, "sessions.view") },
  // One machine (/machines/<id>): not in the navigation; its tab is Machines.
  { path: "/machines/", prefix: true, nav: "/machines", title: "Machine", page: machine, allowed: (me) => can(me, "sessions.view") },
  { path: "/sessions", title: "Sessions", page: sessions, allowed: (me) => can(me, "sessions.view") },
  { path: "/support-codes", title: "Support codes", page: supportCodes, allowed: (me) => can(me, "support_codes.create") },
  { path: "/agent-keys", title: "Agent keys", page: agentKeys, allowed: (me) => can(me, "agent_keys.manage") },
  { path: "/users", title: "Users", page: users, allowed: (me) => me.role === "admin" },
  { path: "/updates", title: "Updates", page: updates, allowed: (me) => me.role === "admin" },
  { path: "/audit", title: "Audit log", page: audit, allowed: (me) => can(me, "audit.read") },
  { path: "/account", title: "Account", page: account, allowed: () => true },
];

/** @param {string} id */
function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing from the page`);
  return el;
}

const main = byId("main");
const topbar = byId("topbar");
const nav = byId("nav");
/** @type {Me | null} */
let me = null;
/** @type {(() => void) | null} */
let cleanup = null;
/** Set by a click in the navigation: the new view gets the keyboard focus. */
let focusMain = false;

function stopView() {
  if (cleanup) {
    try {
      cleanup();
    } catch {
      // a view that fails to stop must not keep the next one from starting
    }
    cleanup = null;
  }
}

/**
 * @param {string} path
 * @param {{replace?: boolean}} [options]
 */
export function navigate(path, { replace: replaceState = false } = {}) {
  if (replaceState) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  show();
}

/**
 * @param {Me} me
 * @param {string} current
 */
function renderNav(me, current) {
  replace(
    nav,
    VIEWS.filter((v) => v.allowed(me) && !v.prefix).map((v) =>
      h(
        "a",
        {
          href: v.path,
          "aria-current": v.path === current ? "page" : false,
          onclick: (/** @type {MouseEvent} */ event) => {
            if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
            event.preventDefault();
            focusMain = true;
            navigate(v.path);
          },
        },
        v.title,
      ),
    ),
  );
  byId("who-name").textContent = me.display_name || me.username;
}

async function show() {
  stopView();
  const path = location.pathname;
  if (path === "/login") {
    topbar.hidden = true;
    document.title = "Log in · GuruConnect";
    cleanup = /** @type {any} */ (await login.render(main, {
      done: async () => {
        me = await whoAmI();
        const next = new URLSearchParams(location.search).get("next");
        // Only a path of our own: never an open redirect.
        const safe = next && /^\/[a-z]/.test(next) ? next : "/machines";
        if (safe.startsWith("/viewer/")) location.assign(safe);
        else navigate(safe, { replace: true });
      },
    }));
    return;
  }
  if (!me) me = await whoAmI();
  if (!me) {
    navigate(`/login?next=${encodeURIComponent(path)}`, { replace: true });
    return;
  }
  const user = me;
  // A reset password or a required second factor: nothing else until it is done.
  if ((user.must_change_password || user.mfa_enrolment_required) && path !== "/account") {
    navigate("/account", { replace: true });
    return;
  }
  const allowed = VIEWS.filter((v) => v.allowed(user));
  const view = allowed.find((v) => v.path === path || (v.prefix && path.startsWith(v.path)));
  if (!view) {
    navigate(allowed.length ? allowed[0].path : "/login", { replace: true });
    return;
  }
  topbar.hidden = false;
  renderNav(user, view.nav || path);
  document.title = `${view.title} · GuruConnect`;
  replace(main, h("h1", {}, view.title));
  if (focusMain) {
    // As after a page load: the keyboard starts at the top of the new view.
    focusMain = false;
    main.focus({ preventScroll: true });
  }
  cleanup = (await view.page.render(main, { me: user, navigate })) || null;
}

setUnauthorizedHandler(() => {
  if (location.pathname === "/login") return;
  me = null;
  navigate(`/login?next=${encodeURIComponent(location.pathname)}`, { replace: true });
});

byId("logout").addEventListener("click", async () => {
  try {
    await logOut();
  } finally {
    me = null;
    navigate("/login", { replace: true });
  }
});

// The skip link moves the focus without touching the URL (a fragment would be a popstate).
document.querySelector(".skip-link")?.addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});

window.addEventListener("popstate", show);
show();
