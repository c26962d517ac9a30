// Maps the error vocabulary (src/domain/errors.ts) onto RFC 6120 §8.3 stanza error conditions,
// for errors Balcony returns to the XMPP network.
import type { ErrorCode } from "../domain/errors.js";

type ErrorType = "cancel" | "modify" | "auth" | "wait";

const CONDITIONS: Partial<Record<ErrorCode, [ErrorType, string]>> = {
  "account-not-found": ["cancel", "service-unavailable"], // RFC 6121 §8.5.2.2 / §8.5.1
  "validation-failed": ["modify", "bad-request"],
  "invalid-jid": ["modify", "jid-malformed"],
  "invalid-text": ["modify", "bad-request"],
  forbidden: ["auth", "forbidden"],
  "rate-limited": ["wait", "resource-constraint"],
  "database-unavailable": ["wait", "internal-server-error"],
};

export function stanzaError(code: ErrorCode): [ErrorType, string] {
  return CONDITIONS[code] ?? ["cancel", "internal-server-error"];
}
