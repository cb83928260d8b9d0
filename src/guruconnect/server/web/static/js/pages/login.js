import { ApiError, logIn } from "../api.js";
import { h, replace } from "../dom.js";

export async function render(main, { done }) {
  const error = h("p", { class: "error", role: "alert", id: "login-error", hidden: true });
  const username = h("input", { name: "username", id: "username", autocomplete: "username", required: true, autofocus: true });
  const password = h("input", { name: "password", id: "password", type: "password", autocomplete: "current-password", required: true });
  const submit = h("button", { type: "submit", class: "primary" }, "Log in");
  let retryTimer = 0;

  const form = h(
    "form",
    {
      class: "login card",
      onsubmit: async (event) => {
        event.preventDefault();
        error.hidden = true;
        submit.disabled = true;
        try {
          await logIn(username.value, password.value);
          await done();
        } catch (exc) {
          password.value = "";
          let message = exc instanceof ApiError ? exc.message : "login failed";
          if (exc instanceof ApiError && exc.status === 429 && exc.retryAfter) {
            message = `Too many failed attempts. Try again in ${exc.retryAfter} seconds.`;
            submit.disabled = true;
            clearTimeout(retryTimer);
            retryTimer = setTimeout(() => (submit.disabled = false), Number(exc.retryAfter) * 1000);
          } else {
            submit.disabled = false;
          }
          error.textContent = message.charAt(0).toUpperCase() + message.slice(1);
          error.hidden = false;
          password.focus();
          return;
        }
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
  replace(main, h("div", { class: "login-wrap" }, form));
  username.focus();
  return () => clearTimeout(retryTimer);
}
