// What the CLI prints: for a person, aligned tables, coloured only when stdout is a terminal that
// takes colours (tty.WriteStream.hasColors() also honours NO_COLOR and FORCE_COLOR); with --json,
// one JSON document on stdout and nothing else there.
import { styleText } from "node:util";

export type Tone = "ok" | "fail" | "warn" | "skip" | "head" | "dim";

const STYLES: Record<Tone, Parameters<typeof styleText>[0]> = {
  ok: "green",
  fail: "red",
  warn: "yellow",
  skip: "gray",
  head: "bold",
  dim: "dim",
};

/**
 * Colours as this module decides (the stream it writes to is a terminal that takes them). Newer
 * Node versions' styleText decides by itself from process.stdout, which is the wrong stream for
 * stderr; Node 20.12 ignores the option and always colours.
 */
const style = (tone: Tone, text: string) => styleText(STYLES[tone], text, { validateStream: false });

/** A table cell: text, or text with a tone (colour). May hold several lines. */
export type Cell = string | { text: string; tone: Tone };

export class Output {
  readonly color: boolean;
  /** stdout is a terminal: a person reads it (rather than a pipe or `$(...)`). */
  readonly tty: boolean;
  /** A step's line is open on stderr ("checking database… "): what else is written there starts a new line. */
  private stepOpen = false;

  constructor(
    readonly json: boolean,
    private readonly stream: NodeJS.WriteStream = process.stdout,
    private readonly errors: NodeJS.WriteStream = process.stderr,
  ) {
    this.tty = stream.isTTY === true;
    this.color = !json && this.tty && stream.hasColors?.() === true;
  }

  paint(tone: Tone, text: string): string {
    return this.color ? style(tone, text) : text;
  }

  line(text = ""): void {
    this.stream.write(text + "\n");
  }

  /** The command's result for scripts (--json). */
  data(value: unknown): void {
    this.stream.write(JSON.stringify(value, null, 2) + "\n");
  }

  private get errorsColor(): boolean {
    return this.errors.isTTY === true && this.errors.hasColors?.() === true;
  }

  private endStepLine(): void {
    if (this.stepOpen) this.errors.write("\n");
    this.stepOpen = false;
  }

  /**
   * Says on stderr that a slow step begins (`checking database… `); the function it returns ends
   * the line with the outcome and the time taken (`ok (12 ms)`; none for a skipped step). With
   * --json, only when stderr is a terminal: a script reading stderr gets nothing but errors.
   */
  step(label: string): (tone: Tone, outcome: string) => void {
    if (this.json && this.errors.isTTY !== true) return () => undefined;
    const started = performance.now();
    this.endStepLine();
    this.errors.write(`${label}… `);
    this.stepOpen = true;
    return (tone, outcome) => {
      // A note written meanwhile (say, "starting the embedded PostgreSQL") broke the line: repeat the label.
      if (!this.stepOpen) this.errors.write(`${label}… `);
      const took = tone === "skip" ? "" : ` (${Math.round(performance.now() - started)} ms)`;
      this.errors.write(`${this.errorsColor ? style(tone, outcome) : outcome}${took}\n`);
      this.stepOpen = false;
    };
  }

  /** A message for a person that is not the command's output (stderr, so that stdout stays clean). */
  note(text: string): void {
    this.endStepLine();
    this.errors.write((this.errorsColor ? style("dim", text) : text) + "\n");
  }

  /** An error for a person, on stderr: what went wrong and how to fix it. */
  error(message: string, fix?: string): void {
    this.endStepLine();
    const color = this.errorsColor;
    this.errors.write(`${color ? style("fail", "error:") : "error:"} ${message}\n`);
    if (fix) this.errors.write(`${color ? style("head", "fix:") : "fix:"} ${fix}\n`);
  }

  /** Columns aligned to their widest cell; a cell with line breaks makes a taller row. */
  table(headers: string[], rows: Cell[][]): void {
    const cells = rows.map((row) => row.map((c) => (typeof c === "string" ? { text: c, tone: null } : c)));
    const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((row) => Math.max(0, ...(row[i]?.text ?? "").split("\n").map((l) => l.length)))));
    const render = (parts: { text: string; tone: Tone | null }[]) => {
      const height = Math.max(1, ...parts.map((p) => p.text.split("\n").length));
      for (let l = 0; l < height; l++) {
        const line = parts.map((p, i) => {
          const text = p.text.split("\n")[l] ?? "";
          // The last column is not padded: no trailing blanks.
          const padded = i === parts.length - 1 ? text : text.padEnd(widths[i]!);
          return p.tone ? this.paint(p.tone, padded) : padded;
        });
        this.line(line.join("  ").trimEnd());
      }
    };
    render(headers.map((h) => ({ text: h, tone: "head" as const })));
    for (const row of cells) render(row);
  }
}
