// Turns on the event loop for requests whose work is long and synchronous (a batch of 1,000
// messages: ~6 ms of checks each). A burst of such requests is ready at once, and their handlers
// would run back to back in one microtask run: 20 batches held the loop for ~110 ms, while the
// database's answer to the first batch's insert (and with it the first stanzas to the XMPP server)
// waited behind the other 19. Taking turns, one request's work runs per turn of the loop and the
// I/O that arrived meanwhile is handled before the next one's, in arrival order.

const waiting: (() => void)[] = [];
let scheduled = false;

function schedule(): void {
  if (scheduled) return;
  scheduled = true;
  // An immediate queued from an immediate runs on the loop's next turn, after its I/O poll.
  setImmediate(release);
}

function release(): void {
  scheduled = false;
  const next = waiting.shift();
  if (waiting.length > 0) schedule();
  // Its continuation runs in the microtask run right after this callback, before the next turn.
  next?.();
}

/** Resolves on a later turn of the event loop than the previous caller's, first come first served. */
export function takeTurn(): Promise<void> {
  return new Promise((resolve) => {
    waiting.push(resolve);
    schedule();
  });
}
