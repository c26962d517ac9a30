// Accepting outbound messages: the HTTP route hands a validated message here; it is written
// (batched with other requests into one statement) and, once committed, sent on the component
// link in the same batch; the outbox records it as sent once the XMPP server confirmed it.
import { Batcher } from "../db/batch.js";
import type { AcceptedMessage, Messages, NewOutbound } from "../db/messages.js";
import type { Outbox } from "../xmpp/outbox.js";

export class Messaging {
  private readonly writer: Batcher<NewOutbound, AcceptedMessage>;

  constructor(messages: Messages, outbox: Outbox, onAccepted: (n: number) => void) {
    this.writer = new Batcher(async (items) => {
      const results = await messages.insertOutbound(items);
      const fresh = results.filter((r) => r.created);
      // Written now; the server's confirmation (and the "sent" status) follows on its own.
      if (fresh.length > 0) void outbox.sendNow(fresh.map((r) => r.message));
      onAccepted(fresh.length);
      return results;
    }, 1000, 3);
  }

  accept(m: NewOutbound): Promise<AcceptedMessage> {
    return this.writer.push(m);
  }

  idle(): Promise<void> {
    return this.writer.idle();
  }
}
