// @ts-check
// The REST API as the browser uses it. The access token lives in an HttpOnly cookie the
// server sets (scripts cannot read it); this module only holds the CSRF token, in memory,
// and sends it with every write. Nothing goes to localStorage or into a URL.

/** @type {string | null} */
let csrfToken = null;

export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} message
   * @param {string | null} [retryAfter]
   */
  constructor(status, message, retryAfter = null) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

/**
 * @param {number} status
 * @param {{detail?: string | {loc?: (string | number)[], msg: string}[]} | null} body
 * @returns {string}
 */
function describe(status, body) {
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail) && detail.length) {
    return detail
      .map((e) => `${(e.loc || []).filter((p) => p !== "body").join(".")}: ${e.msg}`)
      .join("; ");
  }
  return `request failed (HTTP ${status})`;
}

/**
 * Calls that find the session gone (401) go through this hook (the app sends to login).
 * @type {((error: ApiError) => void) | null}
 */
let onUnauthorized = null;
/** @param {(error: ApiError) => void} fn */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

/**
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 * @returns {Promise<any>}
 */
export async function api(method, path, body) {
  /** @type {Record<string, string>} */
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "cannot reach the server");
  }
  let data = null;
  if (response.status !== 204) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const retry = response.headers.get("Retry-After");
    const error = new ApiError(response.status, describe(response.status, data), retry);
    if (response.status === 401 && onUnauthorized && !path.startsWith("/api/auth/session")) {
      onUnauthorized(error);
    }
    throw error;
  }
  return data;
}

/**
 * @param {string} username
 * @param {string} password
 */
export async function logIn(username, password) {
  const session = await api("POST", "/api/auth/session", { username, password });
  csrfToken = session.csrf_token;
  return session;
}

/** Who is logged in (and the CSRF token of this browser session); null when nobody. */
export async function whoAmI() {
  try {
    const me = await api("GET", "/api/auth/me");
    csrfToken = me.csrf_token;
    return me;
  } catch (error) {
    if (/** @type {ApiError} */ (error).status === 401) return null;
    throw error;
  }
}

export async function logOut() {
  try {
    await api("POST", "/api/auth/logout");
  } finally {
    csrfToken = null;
  }
}

/**
 * @param {{permissions: string[]} | null | undefined} me
 * @param {string} permission
 */
export function can(me, permission) {
  return Boolean(me && me.permissions.includes(permission));
}
