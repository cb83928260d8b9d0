// The dashboard shell: who is logged in, the navigation, and which view the path shows.
import { can, logOut, setUnauthorizedHandler, whoAmI } from "./api.js";
import { h, replace } from "./dom.js";
import * as account from "./pages/account.js";
import * as agentKeys from "./pages/agent-keys.js";
import * as audit from "./pages/audit.js";
import * as login from "./pages/login.js";
import * as machines from "./pages/machines.js";
import * as sessions from "./pages/sessions.js";
import * as supportCodes from "./pages/support-codes.js";
import * as updates from "./pages/updates.js";
import * as users from "./pages/users.js";

const VIEWS = [
  { path: "/machines", title: "Machines", page: machines, allowed: (me) => can(me, "sessions.view") },
  { path: "/sessions", title: "Sessions", page: sessions, allowed: (me) => can(me, "sessions.view") },
  { path: "/support-codes", title: "Support codes", page: supportCodes, allowed: (me) => can(me, "support_codes.create") },
  { path: "/agent-keys", title: "Agent keys", page: agentKeys, allowed: (me) => can(me, "agent_keys.manage") },
  { path: "/users", title: "Users", page: users, allowed: (me) => me.role === "admin" },
  { path: "/updates", title: "Updates", page: updates, allowed: (me) => me.role === "admin" },
  { path: "/audit", title: "Audit log", page: audit, allowed: (me) => can(me, "audit.read") },
  { path: "/account", title: "Account", page: account, allowed: () => true },
];

const main = document.getElementById("main");
const topbar = document.getElementById("topbar");
const nav = document.getElementById("nav");
let me = null;
let cleanup = null;

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

export function navigate(path, { replace: replaceState = false } = {}) {
  if (replaceState) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  show();
}

function renderNav(current) {
  replace(
    nav,
    VIEWS.filter((v) => v.allowed(me)).map((v) =>
      h(
        "a",
        {
          href: v.path,
          "aria-current": v.path === current ? "page" : false,
          onclick: (event) => {
            if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
            event.preventDefault();
            navigate(v.path);
          },
        },
        v.title,
      ),
    ),
  );
  document.getElementById("who-name").textContent = me.display_name || me.username;
  // On a phone the navigation scrolls sideways: keep the current page's tab in sight.
  const active = nav.querySelector("[aria-current=page]");
  if (active) active.scrollIntoView({ block: "nearest", inline: "center" });
}

async function show() {
  stopView();
  const path = location.pathname;
  if (path === "/login") {
    topbar.hidden = true;
    document.title = "Log in · GuruConnect";
    cleanup = await login.render(main, {
      done: async () => {
        me = await whoAmI();
        const next = new URLSearchParams(location.search).get("next");
        // Only a path of our own: never an open redirect.
        const safe = next && /^\/[a-z]/.test(next) ? next : "/machines";
        if (safe.startsWith("/viewer/")) location.assign(safe);
        else navigate(safe, { replace: true });
      },
    });
    return;
  }
  if (!me) me = await whoAmI();
  if (!me) {
    navigate(`/login?next=${encodeURIComponent(path)}`, { replace: true });
    return;
  }
  // A reset password or a required second factor: nothing else until it is done.
  if ((me.must_change_password || me.mfa_enrolment_required) && path !== "/account") {
    navigate("/account", { replace: true });
    return;
  }
  const allowed = VIEWS.filter((v) => v.allowed(me));
  const view = allowed.find((v) => v.path === path);
  if (!view) {
    navigate(allowed.length ? allowed[0].path : "/login", { replace: true });
    return;
  }
  topbar.hidden = false;
  renderNav(path);
  document.title = `${view.title} · GuruConnect`;
  replace(main, h("h1", {}, view.title));
  cleanup = (await view.page.render(main, { me, navigate })) || null;
}

setUnauthorizedHandler(() => {
  if (location.pathname === "/login") return;
  me = null;
  navigate(`/login?next=${encodeURIComponent(location.pathname)}`, { replace: true });
});

document.getElementById("logout").addEventListener("click", async () => {
  try {
    await logOut();
  } finally {
    me = null;
    navigate("/login", { replace: true });
  }
});

window.addEventListener("popstate", show);
show();
