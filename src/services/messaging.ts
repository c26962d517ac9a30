// Accepting outbound messages: the HTTP route hands a validated message here; it is written
// (batched with other requests into one statement) and, once committed, sent on the component
// link in the same batch. The 202 says "sent" when the XMPP server confirmed the stanza, "queued"
// when the link was down (or did not confirm in time) and the outbox will send it later.
import { Batcher } from "../db/batch.js";
import type { AcceptedMessage, Messages, NewOutbound } from "../db/messages.js";
import type { Outbox } from "../xmpp/outbox.js";

export interface Acceptance extends AcceptedMessage {
  /** For a new message: resolves true once the XMPP server confirmed it (status "sent"). */
  sent: Promise<boolean>;
}

export class Messaging {
  private readonly writer: Batcher<NewOutbound, Acceptance>;

  constructor(messages: Messages, outbox: Outbox, onAccepted: (n: number) => void) {
    this.writer = new Batcher(async (items) => {
      const results = await messages.insertOutbound(items);
      const fresh = results.filter((r) => r.created);
      // The batch slot is free once the stanzas are written; confirmation is awaited per request.
      const sent = fresh.length > 0 ? outbox.sendNow(fresh.map((r) => r.message)) : Promise.resolve(false);
      onAccepted(fresh.length);
      return results.map((r) => ({ ...r, sent: r.created ? sent : Promise.resolve(r.status !== "queued") }));
    }, 1000, 3);
  }

  accept(m: NewOutbound): Promise<Acceptance> {
    return this.writer.push(m);
  }

  idle(): Promise<void> {
    return this.writer.idle();
  }
}
