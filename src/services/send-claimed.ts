// Writing one batch the drain claimed (src/db/outbox.ts drainOnce) and waiting for the XMPP
// server's confirmation: what the claim's transaction then records about each row.
import type { DrainOutcome, Queued } from "../db/outbox.js";
import { isSendable } from "../domain/message.js";
import type { Stanza } from "../domain/stanza.js";
import type { OutboundPort, ServiceLog, ServiceMetrics } from "./ports.js";

const asStanza = (q: Queued): Stanza => (q.message ? { kind: "message", ...q.message } : q.stanza!);

/**
 * Writes the rows in one socket write and waits for the confirmation; null when nothing could be
 * written (the rows stay queued). Unconfirmed, the written messages join `unconfirmed` (the peer
 * may have them) and it throws, so the claim rolls back and they go out again after reconnection.
 * A message handed over to the outbox (an account's deletion) that this holder wrote and had
 * confirmed already (`confirmed`) is done with, not written again.
 */
export async function sendClaimed(
  rows: Queued[],
  out: OutboundPort,
  log: ServiceLog,
  metrics: Pick<ServiceMetrics, "messagesWritten">,
  unconfirmed: Set<string>,
  confirmed: (id: string) => boolean = () => false,
): Promise<DrainOutcome | null> {
  // A message the server would refuse (malformed, too big) would close the link on every
  // attempt and block the queue behind it for good: it fails instead.
  const unsendable = rows.filter((q) => q.message && !isSendable(q.message));
  const sendable = rows.filter((q) => !unsendable.includes(q) && !(q.stanza?.kind === "message" && confirmed(q.stanza.id)));
  const stanzas = sendable.map(asStanza);
  const refused = out.write(stanzas);
  if (refused === null) return null;
  const refusedRows = sendable.filter((_, i) => refused.includes(stanzas[i]!));
  const failed = [...unsendable, ...refusedRows].flatMap((q) => (q.message ? [q.message.id] : []));
  const refusedOther = refusedRows.filter((q) => q.stanza);
  if (refusedOther.length) log.warn({ seqs: refusedOther.map((q) => q.seq) }, "outbound stanzas over MAX_STANZA_BYTES dropped");
  if (failed.length) log.warn({ ids: failed }, "queued messages that cannot be sent marked failed");
  metrics.messagesWritten(sendable.filter((q) => q.message && !refusedRows.includes(q)).length);
  const error = { type: "modify", condition: "policy-violation", text: "not sendable: malformed or over MAX_STANZA_BYTES" };
  if (await out.confirm()) return { failed, error, done: [...new Set(rows.filter((q) => q.stanza).map((q) => q.seq))] };
  for (const q of sendable) if (q.message && !refusedRows.includes(q)) unconfirmed.add(q.message.id);
  throw new Error("the XMPP server did not confirm the batch");
}
