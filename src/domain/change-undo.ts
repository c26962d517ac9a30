// A change the account made to one of its messages that the other side may still refuse: a
// correction (XEP-0308) or its reactions (XEP-0444). The change is applied when it is posted, as
// API.md says, and goes out under a wire id of its own; if an error comes back under that id
// (RFC 6120 §8.3: a room refuses a group message from a visitor, XEP-0045 §7.4), nobody else saw
// the change, so the message goes back to what it was, unless a later change replaced it since.
import { canonicalJson } from "./message.js";

/** What a refused change puts back, and what it made (to tell whether it is still the latest). */
export type ChangeUndo =
  | { kind: "replace"; before: { body: unknown; editedAt: string | null }; after: unknown }
  | { kind: "reactions"; by: string; before: string[]; after: string[] };

/** The message as a refused change finds it. */
export interface ChangedMessage {
  body: unknown;
  reactions: Record<string, string[]> | null;
  retractedAt: Date | null;
}

/** What to write back for a refused change, or null when a later change (or a retraction) stands. */
export type Restore = { kind: "replace"; body: unknown; editedAt: string | null } | { kind: "reactions"; by: string; emojis: string[] };

export function restoreOf(undo: ChangeUndo, m: ChangedMessage): Restore | null {
  if (m.retractedAt) return null;
  if (undo.kind === "replace") {
    return canonicalJson(m.body) === canonicalJson(undo.after) ? { kind: "replace", ...undo.before } : null;
  }
  const now = m.reactions?.[undo.by] ?? [];
  return sameSet(now, undo.after) ? { kind: "reactions", by: undo.by, emojis: undo.before } : null;
}

const sameSet = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x) => b.includes(x));
