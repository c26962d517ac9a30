// The columns both directions' message inserts bind, in this order (src/db/rows.ts rowsFrom):
// outbound (src/db/messages.ts) and inbound (src/db/inbound-writes.ts) add their own after them.
import { jsonParam as json } from "./client.js";
import type { Column } from "./rows.js";

/** What both directions' inserts bind of a message, in this order (see rowsFrom). */
export interface MessageRow {
  id: string;
  accountId: number;
  peer: string;
  to: string;
  from: string;
  type: string;
  body?: unknown;
  subject?: unknown;
  thread?: string | null;
  lang?: string | null;
  receipt?: boolean;
  state?: string | null;
}

/** The columns both directions' inserts start with (src/db/inbound-writes.ts adds its own after them). */
export const MESSAGE_COLUMNS: Column<MessageRow>[] = [
  { name: "id", type: "uuid", value: (m) => m.id },
  { name: "account_id", type: "int", value: (m) => m.accountId },
  { name: "peer", type: "text", value: (m) => m.peer },
  { name: "to_jid", type: "text", value: (m) => m.to },
  { name: "from_jid", type: "text", value: (m) => m.from },
  { name: "type", type: "text", value: (m) => m.type },
  { name: "body", type: "json", value: (m) => json(m.body) },
  { name: "subject", type: "json", value: (m) => json(m.subject) },
  { name: "thread", type: "text", value: (m) => m.thread ?? null },
  { name: "lang", type: "text", value: (m) => m.lang ?? null },
  { name: "receipt", type: "bool", value: (m) => m.receipt ?? false },
  { name: "state", type: "text", value: (m) => m.state ?? null },
];

