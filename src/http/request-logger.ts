// Request loggers made on first use. Fastify gives every request a child of the app's logger with
// the request's id bound in, and pino builds a child by serialising its bindings (through the
// redaction's stringifier): 1.5% of the gateway's CPU at message throughput (`perf record` of
// bench/messages.ts), for requests that mostly never log. Here a request's logger makes that child
// the first time something logs through it, so whatever is logged is what pino's child writes.
import type { FastifyBaseLogger } from "fastify";

type Bindings = Parameters<FastifyBaseLogger["child"]>[0];
type ChildOptions = Parameters<FastifyBaseLogger["child"]>[1];
type Log = (...args: unknown[]) => void;

const LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

class LazyChild {
  #child: FastifyBaseLogger | undefined;

  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly bindings: Bindings,
    private readonly options: ChildOptions,
  ) {}

  /** The child pino would have given the request, made now if it was not. */
  made(): FastifyBaseLogger {
    return (this.#child ??= this.parent.child(this.bindings, this.options));
  }

  get level(): string {
    return this.made().level;
  }

  set level(level: string) {
    this.made().level = level;
  }

  child(bindings: Bindings, options?: ChildOptions): FastifyBaseLogger {
    return this.made().child(bindings, options);
  }
}

// The log methods, on the prototype (nothing allocated per request), each forwarding to the child.
for (const level of LEVELS) {
  Object.defineProperty(LazyChild.prototype, level, {
    value(this: LazyChild, ...args: unknown[]) {
      const child = this.made();
      (child[level] as Log).apply(child, args);
    },
  });
}

/** Fastify's `childLoggerFactory`: a request's logger that becomes pino's child when first used. */
export const lazyRequestLogger = (logger: FastifyBaseLogger, bindings: Bindings, options: ChildOptions): FastifyBaseLogger =>
  new LazyChild(logger, bindings, options) as unknown as FastifyBaseLogger;
