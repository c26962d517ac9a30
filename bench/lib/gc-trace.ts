// Reads V8's --trace-gc lines (one per collection, on the traced process's stdout) and tallies
// them by kind, so a benchmark can say which collections fell in a window. The kind that matters
// for idle streams is V8's memory reducer: some seconds after a full collection that left the heap
// bigger than at its last run, once allocation is low, it runs two or three full collections in
// "reduce" mode to give memory back (v8/src/heap/memory-reducer.cc). On an idle gateway after a
// mass reconnect, those are the one burst of CPU in an otherwise flat window.
//
// A line looks like (Node 20, V8 11.3):
//   [18032:0x65e9fa0]    48885 ms: Mark-Compact (reduce) 130.9 (154.2) -> 130.4 (137.2) MB, 54.69 / 0.01 ms  (+ 111.5 ms in 398 steps since start of marking, ...) finalize incremental marking via task; ...
// The main thread's time is the pause (54.69 ms) plus its incremental marking steps (111.5 ms);
// concurrent marking and sweeping on V8's helper threads are not in the line.

export interface GcKindTally {
  count: number;
  /** Main-thread milliseconds: pauses plus incremental marking steps. */
  mainMs: number;
}

export interface GcTally {
  /** Full collections in reduce mode: the memory reducer (or a low-memory notification). */
  reducer: GcKindTally;
  /** Other full collections (Mark-Compact, Mark-Sweep). */
  full: GcKindTally;
  /** Young-generation collections (Scavenge, Minor Mark-Compact). */
  young: GcKindTally;
}

const LINE = /\d+ ms: (Scavenge|Minor Mark-Compact|Mark-Compact|Mark-Sweep)( \(reduce\))? .*? MB, ([\d.]+) \/ [\d.]+ ms(?:\s+\(\+ ([\d.]+) ms in)?/;

export function tallyGcTrace(text: string): GcTally {
  const tally: GcTally = { reducer: { count: 0, mainMs: 0 }, full: { count: 0, mainMs: 0 }, young: { count: 0, mainMs: 0 } };
  for (const line of text.split("\n")) {
    const m = LINE.exec(line);
    if (!m) continue;
    const kind = m[1] === "Scavenge" || m[1] === "Minor Mark-Compact" ? tally.young : m[2] ? tally.reducer : tally.full;
    kind.count++;
    kind.mainMs += Number(m[3]) + Number(m[4] ?? 0);
  }
  return tally;
}

export function formatGcTally(t: GcTally): string {
  const one = (k: GcKindTally) => `${k.count} (${k.mainMs.toFixed(0)} ms)`;
  return `${one(t.reducer)} / ${one(t.full)} / ${one(t.young)}`;
}
