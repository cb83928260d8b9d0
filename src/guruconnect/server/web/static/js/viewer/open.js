// @ts-check
// How another page opens the viewer: in a tab of its own, so the list it was opened from
// stays where it was. The Machines list calls
//   openViewer(session.id, scope, "machines")
// after creating the session (POST /api/machines/{id}/sessions); "from" picks where the
// viewer's back link goes.

/** @typedef {"machines" | "sessions"} From */

/** The viewer's address for a session.
 * @param {string} sessionId @param {"view" | "control"} scope @param {From} from @returns {string} */
export function viewerUrl(sessionId, scope, from) {
  const params = new URLSearchParams({ scope, from });
  return `/viewer/${encodeURIComponent(sessionId)}?${params}`;
}

/** Open the viewer in a new tab (no opener: the viewer cannot reach back into the list's
 * page), or in this tab when the browser blocks the new one. Returns "tab" or "here".
 * @param {string} sessionId @param {"view" | "control"} scope @param {From} from
 * @returns {"tab" | "here"} */
export function openViewer(sessionId, scope, from) {
  const url = viewerUrl(sessionId, scope, from);
  const tab = window.open(url, "_blank");
  if (tab) {
    tab.opener = null;
    return "tab";
  }
  location.assign(url);
  return "here";
}
