// @ts-check
// The constants the viewer shares with Python, fetched from /web/constants.json (built by
// guruconnect.server.web.routes.viewer_constants from guruconnect.protocol): close codes by
// name, end reasons in words, the special-key menu, the consent timeout. Nothing here is a
// hand copy of a Python value; tests/web/test_viewer.py checks the served values.

/**
 * @typedef {{ value: number, name: string, label: string }} SpecialKeyItem
 * @typedef {{
 *   closeCodes: Record<string, number>,
 *   endReasons: Record<string, string>,
 *   specialKeys: SpecialKeyItem[],
 *   consentTimeoutSeconds: number,
 * }} Constants
 */

/** The close codes (by their Python name, CloseCode) after which trying again cannot help,
 * with what the viewer says about each. */
const FINAL_CLOSE_TEXT = Object.freeze({
  MESSAGE_TOO_BIG: "a message was too big",
  UNAUTHORIZED: "the viewer ticket was refused",
  FORBIDDEN_ORIGIN: "this page's origin is not allowed",
  SESSION_NOT_FOUND: "no such session",
  REVOKED: "your access was revoked",
  PROTOCOL_ERROR: "a malformed message",
  NOT_ALLOWED: "a message that is not allowed",
  SESSION_ENDED: "the session ended",
});

/** @returns {Promise<Constants>} */
export async function loadConstants() {
  const response = await fetch("/web/constants.json", { cache: "no-cache" });
  if (!response.ok) throw new Error(`constants: HTTP ${response.status}`);
  return /** @type {Constants} */ (await response.json());
}

/** What the viewer says about a close code after which it does not reconnect, or "" for a
 * code worth a retry.
 * @param {Constants} constants @param {number} code @returns {string} */
export function finalCloseText(constants, code) {
  for (const [name, text] of Object.entries(FINAL_CLOSE_TEXT)) {
    if (constants.closeCodes[name] === code) return text;
  }
  return "";
}

/** The sentence for an end reason (unknown ones are spelled out).
 * @param {Constants} constants @param {string | null | undefined} reason @returns {string} */
export function endedText(constants, reason) {
  if (reason && Object.hasOwn(constants.endReasons, reason)) return constants.endReasons[reason];
  return `Ended: ${(reason || "no reason given").replaceAll("_", " ")}.`;
}

/** End reasons after which asking the person at the machine again makes sense. */
export const ASK_AGAIN_REASONS = Object.freeze(["consent_denied", "consent_timeout"]);
