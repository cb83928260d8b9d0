// @ts-check
// Logging in: the password, then (when the account has two-factor login) a code. The
// password step yields no session, only a short-lived challenge for the code step.
import { ApiError, api, logIn } from "../api.js";
import { h, replace } from "../dom.js";

/**
 * @typedef {object} SessionAnswer
 * @property {boolean} mfa_required
 * @property {string | null} mfa_token
 */

/**
 * @param {unknown} exc
 * @param {string} fallback
 * @returns {string}
 */
function describe(exc, fallback) {
  const message = exc instanceof ApiError ? exc.message : fallback;
  return message.charAt(0).toUpperCase() + message.slice(1);
}

/**
 * @param {HTMLElement} main
 * @param {{ done: () => Promise<void> }} options
 * @returns {Promise<() => void>}
 */
export async function render(main, { done }) {
  let retryTimer = 0;
  const wrap = h("div", { class: "login-wrap" });

  /**
   * Show an error; after a 429, keep the button off until the server's Retry-After.
   * @param {HTMLElement} error
   * @param {HTMLButtonElement} submit
   * @param {unknown} exc
   * @param {string} fallback
   */
  function refuse(error, submit, exc, fallback) {
    let message = describe(exc, fallback);
    if (exc instanceof ApiError && exc.status === 429 && exc.retryAfter) {
      message = `Too many failed attempts. Try again in ${exc.retryAfter} seconds.`;
      clearTimeout(retryTimer);
      retryTimer = window.setTimeout(() => (submit.disabled = false), Number(exc.retryAfter) * 1000);
    } else {
      submit.disabled = false;
    }
    error.textContent = message;
    error.hidden = false;
  }

  function passwordStep() {
    const error = h("p", { class: "error", role: "alert", id: "login-error", hidden: true });
    const username = /** @type {HTMLInputElement} */ (h("input", { name: "username", id: "username", autocomplete: "username", required: true, autofocus: true }));
    const password = /** @type {HTMLInputElement} */ (h("input", { name: "password", id: "password", type: "password", autocomplete: "current-password", required: true }));
    const submit = /** @type {HTMLButtonElement} */ (h("button", { type: "submit", class: "primary" }, "Log in"));
    const form = h(
      "form",
      {
        class: "login card",
        onsubmit: async (/** @type {SubmitEvent} */ event) => {
          event.preventDefault();
          error.hidden = true;
          submit.disabled = true;
          /** @type {SessionAnswer} */
          let answer;
          try {
            answer = await logIn(username.value, password.value);
          } catch (exc) {
            password.value = "";
            refuse(error, submit, exc, "login failed");
            password.focus();
            return;
          }
          if (answer.mfa_required && answer.mfa_token) codeStep(answer.mfa_token);
          else await done();
        },
      },
      h("h1", {}, "GuruConnect"),
      h("p", { class: "muted" }, "Log in to reach your machines."),
      h("label", { for: "username" }, "Username"),
      username,
      h("label", { for: "password" }, "Password"),
      password,
      error,
      submit,
    );
    replace(wrap, form);
    username.focus();
  }

  /** @param {string} challenge */
  function codeStep(challenge) {
    const error = h("p", { class: "error", role: "alert", id: "mfa-error", hidden: true });
    const code = /** @type {HTMLInputElement} */ (
      h("input", { name: "code", id: "mfa-code", autocomplete: "one-time-code", required: true, maxlength: 64, "aria-describedby": "mfa-help" })
    );
    const submit = /** @type {HTMLButtonElement} */ (h("button", { type: "submit", class: "primary" }, "Verify"));
    const form = h(
      "form",
      {
        class: "login card",
        id: "mfa-form",
        onsubmit: async (/** @type {SubmitEvent} */ event) => {
          event.preventDefault();
          error.hidden = true;
          submit.disabled = true;
          try {
            await api("POST", "/api/auth/session/mfa", { mfa_token: challenge, code: code.value.trim() });
          } catch (exc) {
            code.value = "";
            refuse(error, submit, exc, "the code was not accepted");
            // An expired or spent challenge: start again from the password.
            if (exc instanceof ApiError && /log in again/.test(exc.message)) {
              passwordStep();
              const again = document.getElementById("login-error");
              if (again) {
                again.textContent = describe(exc, "log in again");
                again.hidden = false;
              }
              return;
            }
            code.focus();
            return;
          }
          await done();
        },
      },
      h("h1", {}, "Two-factor login"),
      h("p", { class: "muted", id: "mfa-help" }, "Enter the 6-digit code from your authenticator app, or one of your recovery codes."),
      h("label", { for: "mfa-code" }, "Code"),
      code,
      error,
      submit,
      h("button", { type: "button", class: "link", onclick: () => passwordStep() }, "Back to the password"),
    );
    replace(wrap, form);
    code.focus();
  }

  replace(main, wrap);
  passwordStep();
  return () => clearTimeout(retryTimer);
}
