// @ts-check
// Your account: change your password, set up (or turn off) two-factor login, and, for
// admins, the tenant's security policy. The QR code comes from the server as an SVG
// data: URL (no script, no CDN), so the page's CSP stays strict.
import { api } from "../api.js";
import { h, replace } from "../dom.js";

/**
 * @typedef {object} Account
 * @property {string} username
 * @property {boolean} must_change_password
 * @property {boolean} mfa_enabled
 * @property {boolean} mfa_required
 * @property {boolean} mfa_enrolment_required
 * @property {number} recovery_codes_left
 *
 * @typedef {object} MfaSetup
 * @property {string} secret
 * @property {string} otpauth_uri
 * @property {string} qr_data_url
 *
 * @typedef {{ mfa_required: boolean, audit_keep_content: boolean }} Policy
 * @typedef {{ role: string }} Me
 */

/**
 * A labelled input (the label names what the field is for, for screen readers too).
 * @param {string} id
 * @param {string} label
 * @param {Record<string, string | number | boolean>} attrs
 * @returns {[HTMLLabelElement, HTMLInputElement]}
 */
function field(id, label, attrs) {
  const input = /** @type {HTMLInputElement} */ (h("input", { id, name: id, required: true, ...attrs }));
  return [/** @type {HTMLLabelElement} */ (h("label", { for: id }, label)), input];
}

/**
 * @param {unknown} error
 * @returns {string}
 */
function message(error) {
  const text = error instanceof Error ? error.message : String(error);
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/**
 * @param {HTMLElement} main
 * @param {{ me: Me }} context
 */
export async function render(main, { me }) {
  const banner = h("p", { class: "notice", id: "account-banner", role: "status", hidden: true });
  const passwordCard = h("section", { class: "card", id: "password-card", "aria-labelledby": "password-title" });
  const mfaCard = h("section", { class: "card", id: "mfa-card", "aria-labelledby": "mfa-title" });
  const policyCard = h("section", { class: "card", id: "policy-card", "aria-labelledby": "policy-title" });
  main.append(banner, passwordCard, mfaCard);
  if (me.role === "admin") main.append(policyCard);

  /** @type {Account} */
  let account = await api("GET", "/api/auth/account");

  function drawBanner() {
    const why = account.must_change_password
      ? "An administrator reset your password. Choose a new one to go on."
      : account.mfa_enrolment_required
        ? "Your organisation requires two-factor login. Set it up below to go on."
        : "";
    banner.textContent = why;
    banner.hidden = !why;
  }

  /**
   * A form whose result or error is announced in its own status line.
   * @param {string} id
   * @param {(form: HTMLFormElement, say: (text: string, ok?: boolean) => void) => Promise<void>} submit
   * @param {...(Node | string | null)} children
   * @returns {HTMLFormElement}
   */
  function form(id, submit, ...children) {
    const status = h("p", { class: "ok", role: "status", id: `${id}-status`, hidden: true });
    /** @type {(text: string, ok?: boolean) => void} */
    const say = (text, ok = true) => {
      status.className = ok ? "ok" : "error";
      status.setAttribute("role", ok ? "status" : "alert");
      status.textContent = text;
      status.hidden = false;
    };
    const el = /** @type {HTMLFormElement} */ (
      h(
        "form",
        {
          class: "form-stack",
          id,
          onsubmit: async (/** @type {SubmitEvent} */ event) => {
            event.preventDefault();
            const buttons = el.querySelectorAll("button");
            buttons.forEach((b) => (b.disabled = true));
            try {
              await submit(el, say);
            } catch (error) {
              say(message(error), false);
            } finally {
              buttons.forEach((b) => (b.disabled = false));
            }
          },
        },
        ...children,
        status,
      )
    );
    return el;
  }

  // -- password ---------------------------------------------------------------------------
  function drawPassword() {
    const [currentLabel, current] = field("account-current", "Current password", { type: "password", autocomplete: "current-password" });
    const [nextLabel, next] = field("account-new", "New password (12 or more characters)", { type: "password", autocomplete: "new-password", minlength: 12 });
    const [againLabel, again] = field("account-confirm", "New password again", { type: "password", autocomplete: "new-password", minlength: 12 });
    replace(
      passwordCard,
      h("h2", { id: "password-title" }, "Password"),
      form(
        "password-form",
        async (_form, say) => {
          if (next.value !== again.value) {
            say("The two new passwords differ.", false);
            again.focus();
            return;
          }
          const forced = account.must_change_password;
          /** @type {{ revoked_sessions: number }} */
          const done = await api("POST", "/api/auth/password", { current_password: current.value, new_password: next.value });
          current.value = next.value = again.value = "";
          const others = done.revoked_sessions;
          say(`Password changed. ${others === 1 ? "1 other session was" : `${others} other sessions were`} logged out.`);
          account = await api("GET", "/api/auth/account");
          drawBanner();
          if (forced && !account.mfa_enrolment_required) location.assign("/");
          else drawMfa();
        },
        currentLabel,
        current,
        nextLabel,
        next,
        againLabel,
        again,
        h("button", { type: "submit", class: "primary" }, "Change password"),
      ),
    );
  }

  // -- two-factor login ------------------------------------------------------------------
  /** @param {string[]} codes */
  function showRecoveryCodes(codes) {
    replace(
      mfaCard,
      h("h2", { id: "mfa-title" }, "Two-factor login"),
      h("p", { class: "ok", role: "status" }, "Two-factor login is on."),
      h("p", {}, "Save these recovery codes now, somewhere safe: each logs you in once without your phone, and they are not shown again."),
      h("ol", { id: "recovery-codes", class: "codes" }, codes.map((c) => h("li", {}, h("code", {}, c)))),
      h("button", { type: "button", class: "primary", id: "recovery-done", onclick: () => finished() }, "I saved them"),
    );
  }

  async function finished() {
    account = await api("GET", "/api/auth/account");
    drawBanner();
    if (banner.dataset.forced && !account.must_change_password && !account.mfa_enrolment_required) {
      location.assign("/");
      return;
    }
    drawMfa();
  }

  /** @param {MfaSetup} setup */
  function showEnrolment(setup) {
    const [codeLabel, code] = field("mfa-enable-code", "The 6-digit code the app shows", { autocomplete: "one-time-code", inputmode: "numeric", maxlength: 6 });
    replace(
      mfaCard,
      h("h2", { id: "mfa-title" }, "Two-factor login"),
      h("p", {}, "Scan this QR code with an authenticator app (any TOTP app), then enter the code it shows."),
      h("img", { src: setup.qr_data_url, id: "mfa-qr", class: "qr", alt: "QR code to add GuruConnect to your authenticator app", width: 200, height: 200 }),
      h("p", { class: "muted" }, "No camera? Type this key into the app: ", h("code", { id: "mfa-secret" }, setup.secret)),
      form(
        "mfa-enable-form",
        async () => {
          /** @type {{ recovery_codes: string[] }} */
          const done = await api("POST", "/api/auth/mfa/enable", { code: code.value.trim() });
          showRecoveryCodes(done.recovery_codes);
          document.getElementById("recovery-done")?.focus();
        },
        codeLabel,
        code,
        h("button", { type: "submit", class: "primary" }, "Turn on two-factor login"),
      ),
    );
    code.focus();
  }

  function drawMfa() {
    const title = h("h2", { id: "mfa-title" }, "Two-factor login");
    if (!account.mfa_enabled) {
      const [passwordLabel, password] = field("mfa-setup-password", "Your password", { type: "password", autocomplete: "current-password" });
      replace(
        mfaCard,
        title,
        h("p", { id: "mfa-state" }, "Off. With it on, logging in also asks for a code from your phone."),
        form(
          "mfa-setup-form",
          async () => showEnrolment(await api("POST", "/api/auth/mfa/setup", { password: password.value })),
          passwordLabel,
          password,
          h("button", { type: "submit", class: "primary" }, "Set up two-factor login"),
        ),
      );
      return;
    }
    const left = account.recovery_codes_left;
    const [renewPasswordLabel, renewPassword] = field("mfa-renew-password", "Your password", { type: "password", autocomplete: "current-password" });
    const [renewCodeLabel, renewCode] = field("mfa-renew-code", "A code from your app", { autocomplete: "one-time-code" });
    const renew = form(
      "mfa-renew-form",
      async () => {
        /** @type {{ recovery_codes: string[] }} */
        const done = await api("POST", "/api/auth/mfa/recovery-codes", { password: renewPassword.value, code: renewCode.value.trim() });
        showRecoveryCodes(done.recovery_codes);
      },
      h("h3", {}, "New recovery codes"),
      renewPasswordLabel,
      renewPassword,
      renewCodeLabel,
      renewCode,
      h("button", { type: "submit" }, "Make new recovery codes"),
    );
    let disable = null;
    if (!account.mfa_required) {
      const [offPasswordLabel, offPassword] = field("mfa-off-password", "Your password", { type: "password", autocomplete: "current-password" });
      const [offCodeLabel, offCode] = field("mfa-off-code", "A code from your app, or a recovery code", { autocomplete: "one-time-code" });
      disable = form(
        "mfa-off-form",
        async () => {
          await api("POST", "/api/auth/mfa/disable", { password: offPassword.value, code: offCode.value.trim() });
          await finished();
        },
        h("h3", {}, "Turn off"),
        offPasswordLabel,
        offPassword,
        offCodeLabel,
        offCode,
        h("button", { type: "submit", class: "danger" }, "Turn off two-factor login"),
      );
    }
    replace(
      mfaCard,
      title,
      h("p", { id: "mfa-state" }, `On. ${left} recovery ${left === 1 ? "code" : "codes"} left.`, account.mfa_required ? " Your organisation requires it." : ""),
      renew,
      disable,
    );
  }

  // -- the tenant's policy (admins) ------------------------------------------------------
  async function drawPolicy() {
    /** @type {Policy} */
    const policy = await api("GET", "/api/auth/policy");
    const requireMfa = /** @type {HTMLInputElement} */ (h("input", { type: "checkbox", id: "policy-mfa", checked: policy.mfa_required }));
    const keepContent = /** @type {HTMLInputElement} */ (h("input", { type: "checkbox", id: "policy-content", checked: policy.audit_keep_content }));
    replace(
      policyCard,
      h("h2", { id: "policy-title" }, "Security policy (every user)"),
      form(
        "policy-form",
        async (_form, say) => {
          await api("PUT", "/api/auth/policy", { mfa_required: requireMfa.checked, audit_keep_content: keepContent.checked });
          say("Policy saved.");
          account = await api("GET", "/api/auth/account");
          drawBanner();
        },
        h("label", { class: "inline", for: "policy-mfa" }, requireMfa, " Require two-factor login"),
        h("label", { class: "inline", for: "policy-content" }, keepContent, " Keep the text of chat messages and clipboard transfers in the audit log (otherwise only their length and fingerprint)"),
        h("button", { type: "submit", class: "primary" }, "Save policy"),
      ),
    );
  }

  if (account.must_change_password || account.mfa_enrolment_required) banner.dataset.forced = "1";
  drawBanner();
  drawPassword();
  drawMfa();
  if (me.role === "admin") await drawPolicy();
  if (account.must_change_password) document.getElementById("account-current")?.focus();
}
