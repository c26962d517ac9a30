// An event as a text/event-stream frame (HTML §9.2.6: id, event and data fields, then a blank
// line). Built once per event and kept with it, so every stream that writes the event shares it;
// its length is also what a stream's queue of unwritten events is bounded by (src/services/stream-slots.ts).
import type { EventType } from "./events.js";

export interface FramedEvent {
  id: number;
  event: EventType;
  data: unknown;
}

const frames = new WeakMap<FramedEvent, string>();

/** JSON.stringify never emits a raw newline, so one data: line carries the whole event. */
export function sseFrame(e: FramedEvent): string {
  let f = frames.get(e);
  if (f === undefined) frames.set(e, (f = `id: ${e.id}\nevent: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`));
  return f;
}
