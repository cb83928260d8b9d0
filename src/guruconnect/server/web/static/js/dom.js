// @ts-check
// Building DOM nodes without HTML strings: every value becomes a text node or an attribute,
// so a hostname like <img src=x onerror=...> is shown as text, never parsed as markup.

/** @typedef {Record<string, any>} Attrs */
/** @typedef {Node | string | number | null | undefined | false | Child[]} Child */

/**
 * h("button", {class: "primary", onclick: fn, disabled: true}, "Save", child, [more])
 * Children: strings/numbers (text), nodes, arrays, null/undefined/false (skipped).
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Attrs | null} [attrs]
 * @param {...Child} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      el.className = value;
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (name === "value" || name === "checked") {
      /** @type {any} */ (el)[name] = value;
    } else if (value === true) {
      el.setAttribute(name, "");
    } else {
      el.setAttribute(name, String(value));
    }
  }
  append(el, children);
  return el;
}

/**
 * @param {Node} el
 * @param {Child[]} children
 */
function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/**
 * @template {Node} N
 * @param {N} el
 * @returns {N}
 */
export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/**
 * @template {Node} N
 * @param {N} el
 * @param {...Child} children
 * @returns {N}
 */
export function replace(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

/**
 * "3 min ago", "just now", "2 h ago", or the date.
 * @param {string | null | undefined} iso
 */
export function ago(iso) {
  if (!iso) return "never";
  const seconds = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (seconds < 10) return "just now";
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return new Date(iso).toLocaleString();
}

/** @param {string | null | undefined} iso */
export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

/**
 * "1:05:09", "4:02"
 * @param {number} seconds
 */
export function duration(seconds) {
  seconds = Math.max(0, Math.floor(seconds));
  const h_ = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = String(seconds % 60).padStart(2, "0");
  return h_ ? `${h_}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

/**
 * @template T
 * @typedef {[string, (row: T) => Child]} Column
 */

/**
 * A table whose columns are [title, row => cell]; scrolls sideways on a narrow screen.
 * @template T
 * @param {Column<T>[]} columns
 * @param {T[]} rows
 * @param {{empty?: string, rowAttrs?: (row: T) => Attrs}} [options]
 */
export function table(columns, rows, { empty = "Nothing here yet.", rowAttrs } = {}) {
  if (!rows.length) return h("p", { class: "empty muted" }, empty);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, columns.map(([title]) => h("th", { scope: "col" }, title || h("span", { class: "visually-hidden" }, "Actions"))))),
      h(
        "tbody",
        {},
        rows.map((row) =>
          h(
            "tr",
            rowAttrs ? rowAttrs(row) : {},
            columns.map(([title, cell]) => h("td", { "data-label": title }, cell(row))),
          ),
        ),
      ),
    ),
  );
}

/**
 * A button that asks "sure?" by changing its label on the first click (no modal dialog).
 * ``what`` (optional) names what it acts on for assistive technology: the accessible name
 * becomes "End (session on pc-7)", then "End now? (session on pc-7)".
 * @param {string} label
 * @param {string} confirmLabel
 * @param {() => Promise<unknown>} action
 * @param {Attrs} [attrs]
 * @param {string} [what]
 */
export function confirmButton(label, confirmLabel, action, attrs = {}, what = "") {
  let armed = false;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  const button = h("button", { type: "button", ...attrs }, label);
  /** @param {string} text */
  const show = (text) => {
    button.textContent = text;
    if (what) button.setAttribute("aria-label", `${text} (${what})`);
  };
  show(label);
  button.addEventListener("click", async () => {
    if (!armed) {
      armed = true;
      show(confirmLabel);
      button.classList.add("danger");
      timer = setTimeout(() => {
        armed = false;
        show(label);
        button.classList.remove("danger");
      }, 4000);
      return;
    }
    clearTimeout(timer);
    button.disabled = true;
    try {
      await action();
    } finally {
      button.disabled = false;
      armed = false;
      show(label);
      button.classList.remove("danger");
    }
  });
  return button;
}

// -- updating in place ---------------------------------------------------------------

/** @typedef {{el: HTMLElement, rowKey: string | null, focusKey: string | null, index: number}} FocusMark */

/** Elements a keyboard user can reach inside a node. */
const FOCUSABLE = "a[href], button, input, select, textarea, [tabindex]:not([tabindex='-1'])";

/**
 * Where the keyboard focus is inside ``container`` (null when it is elsewhere), so an
 * update that rebuilds a row can put it back on the same control.
 * @param {HTMLElement} container
 * @returns {FocusMark | null}
 */
export function rememberFocus(container) {
  const el = document.activeElement;
  if (!(el instanceof HTMLElement) || !container.contains(el)) return null;
  const row = el.closest("[data-key]");
  const rowKey = row instanceof HTMLElement ? row.dataset.key || null : null;
  const index = row ? [...row.querySelectorAll(FOCUSABLE)].indexOf(el) : -1;
  return { el, rowKey, focusKey: el.dataset.focusKey || null, index };
}

/**
 * Put the focus back where ``rememberFocus`` found it: on the same element if it is still
 * in the page, else on the control with the same role in the rebuilt row.
 * @param {HTMLElement} container
 * @param {FocusMark | null} mark
 */
export function restoreFocus(container, mark) {
  if (!mark || document.activeElement === mark.el) return;
  /** @type {HTMLElement | null} */
  let target = mark.el.isConnected && container.contains(mark.el) ? mark.el : null;
  if (!target && mark.rowKey !== null) {
    const row = container.querySelector(`[data-key="${CSS.escape(mark.rowKey)}"]`);
    if (row) {
      const found = mark.focusKey
        ? row.querySelector(`[data-focus-key="${CSS.escape(mark.focusKey)}"]`)
        : row.querySelectorAll(FOCUSABLE)[mark.index];
      if (found instanceof HTMLElement) target = found;
    }
  }
  if (target && !(/** @type {any} */ (target).disabled)) target.focus({ preventScroll: true });
}

/**
 * Show ``rows`` in ``container`` as a table, touching only the rows that changed: a row
 * whose signature (default: its JSON) is unchanged keeps its DOM node, so the keyboard
 * focus, a half-clicked button and the scroll position survive an update.
 * @template T
 * @param {HTMLElement} container
 * @param {Column<T>[]} columns
 * @param {T[]} rows
 * @param {{key: (row: T) => string, sig?: (row: T) => string, empty?: string,
 *   rowAttrs?: (row: T) => Attrs, caption?: string}} options
 */
export function updateTable(container, columns, rows, options) {
  const mark = rememberFocus(container);
  const scroll = window.scrollY;
  const sig = options.sig || ((/** @type {T} */ row) => JSON.stringify(row));
  if (!rows.length) {
    const text = options.empty || "Nothing here yet.";
    const current = container.querySelector(":scope > p.empty");
    if (current) current.textContent = text;
    else replace(container, h("p", { class: "empty muted" }, text));
    return;
  }
  let body = container.querySelector("tbody");
  if (!body) {
    body = h("tbody");
    replace(
      container,
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          {},
          options.caption ? h("caption", { class: "visually-hidden" }, options.caption) : null,
          h("thead", {}, h("tr", {}, columns.map(([title]) => h("th", { scope: "col" }, title || h("span", { class: "visually-hidden" }, "Actions"))))),
          body,
        ),
      ),
    );
  }
  /** @type {Map<string, HTMLTableRowElement>} */
  const old = new Map();
  for (const tr of body.rows) old.set(tr.dataset.key || "", tr);
  const wanted = rows.map((row) => {
    const key = options.key(row);
    const signature = sig(row);
    const previous = old.get(key);
    if (previous && previous.dataset.sig === signature) {
      old.delete(key);
      return previous;
    }
    const tr = h(
      "tr",
      options.rowAttrs ? options.rowAttrs(row) : {},
      columns.map(([title, cell]) => h("td", { "data-label": title }, cell(row))),
    );
    tr.dataset.key = key;
    tr.dataset.sig = signature;
    return tr;
  });
  wanted.forEach((tr, i) => {
    if (body.rows[i] !== tr) body.insertBefore(tr, body.rows[i] || null);
  });
  for (const stale of old.values()) stale.remove();
  while (body.rows.length > wanted.length) body.rows[wanted.length].remove();
  restoreFocus(container, mark);
  if (window.scrollY !== scroll) window.scrollTo({ top: scroll });
}
