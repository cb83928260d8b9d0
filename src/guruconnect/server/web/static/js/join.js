// @ts-check
// The customer's join page: a code (typed, or from the /join/CODE link) -> who is asking,
// what for, and the agent to download with the code bound to it. Everything shown comes
// from /join/CODE/details as text nodes (dom.js h()), never as markup.
import { h, replace } from "./dom.js";

/**
 * @typedef {{platform: string, url: string, file_name: string, label: string}} Download
 * @typedef {{code: string, technician: string | null, company: string | null, purpose: string,
 *   expires_at: string, downloads: Download[], link: string | null}} JoinInfo
 */

/**
 * An element the join page's markup must have (missing: the template is broken).
 * @param {string} id
 * @returns {HTMLElement}
 */
function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`join page: element #${id} is missing`);
  return el;
}

const form = byId("join-form");
const input = /** @type {HTMLInputElement} */ (byId("join-code"));
const status = byId("join-status");
const details = byId("join-details");

function fromPath() {
  const match = location.pathname.match(/^\/join\/([^/]+)$/);
  return match ? decodeURIComponent(match[1]) : "";
}

function guessPlatform() {
  return /Windows/i.test(navigator.userAgent) ? "windows-x86_64" : "linux-x86_64";
}

/** @param {string} text */
function showError(text) {
  replace(details);
  status.textContent = text;
  status.hidden = false;
}

/** @param {JoinInfo} info */
function draw(info) {
  status.hidden = true;
  const mine = guessPlatform();
  const downloads = [...info.downloads].sort((a, b) => (a.platform === mine ? -1 : b.platform === mine ? 1 : 0));
  replace(
    details,
    h(
      "div",
      { class: "card", id: "join-card" },
      h("p", {}, h("strong", { id: "join-technician" }, info.technician || "A technician"),
        info.company ? [" from ", h("strong", { id: "join-company" }, info.company)] : null,
        " asks for ", h("span", { id: "join-purpose" }, info.purpose), "."),
      h("p", { class: "muted" }, "Code ", h("code", { id: "join-code-shown" }, info.code),
        ": it works once and expires at ", new Date(info.expires_at).toLocaleTimeString(), "."),
      downloads.length
        ? h("ul", { class: "downloads" },
            downloads.map((d) =>
              h("li", {},
                h("a", { class: "button primary", href: d.url, download: d.file_name, dataset: { platform: d.platform } },
                  `Download for ${d.label}`),
                " ", h("span", { class: "muted" }, d.file_name))))
        : h("p", { class: "error", id: "join-no-downloads" }, "This server has no agent to download yet; ask your technician."),
      h("p", { class: "muted" },
        "Run the downloaded file (on Linux: chmod +x it first). It asks you before anyone sees your screen, ",
        "shows a bar while the session runs, and deletes itself when the session ends. Nothing is installed."),
      info.link
        ? h("p", {}, "GuruConnect already installed? ",
            h("a", { href: info.link, id: "join-open-app" }, "Open in the app"))
        : null,
    ),
  );
}

/** @param {string} code */
async function look(code) {
  const clean = code.trim().toUpperCase();
  if (!clean) return;
  input.value = clean;
  let response;
  try {
    response = await fetch(`/join/${encodeURIComponent(clean)}/details`, { credentials: "omit" });
  } catch (error) {
    showError("The server cannot be reached. Try again.");
    return;
  }
  /** @type {any} */
  let body = {};
  try {
    body = await response.json();
  } catch (error) {
    body = {};
  }
  if (!response.ok) {
    showError(body.detail || `The server said ${response.status}.`);
    return;
  }
  draw(body);
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const code = input.value.trim().toUpperCase();
  if (!code) return;
  history.replaceState(null, "", `/join/${encodeURIComponent(code)}`);
  look(code);
});

const initial = fromPath();
if (initial) look(initial);
