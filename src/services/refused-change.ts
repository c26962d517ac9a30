// An error bounced under the wire id of a change the account made to its own message (a
// correction, its reactions: src/domain/change-undo.ts): nobody saw the change, so the stored
// message goes back to what it was and a `message-update` event says so. A room refuses them from a
// visitor (XEP-0045 §7.4: `forbidden`), as it refuses the visitor's group messages.
import type { AnyTx } from "../db/client.js";
import type { NewEvent } from "../db/events.js";
import { messageRecord } from "../db/message-state.js";
import { restore, takeUndo } from "../db/message-undo.js";
import type { Account } from "../domain/account.js";
import { restoreOf } from "../domain/change-undo.js";
import { event } from "../domain/events.js";
import { messageView } from "../domain/views.js";

/** The `message-update` to append when the error under `wireId` put a change back; null when it put none back. */
export async function undoRefusedChange(tx: AnyTx, account: Account, peer: string, wireId: string): Promise<NewEvent | null> {
  const taken = await takeUndo(tx, account.id, peer, wireId);
  const back = taken && restoreOf(taken.undo, taken.message);
  if (!taken || !back) return null;
  await restore(tx, taken.id, back);
  return { accountId: account.id, ...event("message-update", messageView(await messageRecord(tx, taken.id))) };
}
