// @ts-check
// The viewer page's entry: one ViewerSession (session.js) for the session in the address.
// The page asks the API (cookie + CSRF) for a single-use viewer ticket, opens
// /ws/viewer?session_id=…&ticket=…, announces the codecs it can decode, then follows the
// SessionState the relay sends. A dropped connection is retried with a fresh ticket; an
// ended, refused or revoked one is not.
import { ViewerSession } from "./session.js";

new ViewerSession(document, location).start();
