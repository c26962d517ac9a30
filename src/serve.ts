// Runs the gateway until SIGINT/SIGTERM, then stops it cleanly: the body of `node dist/server.js`
// and of `balcony start`.
import type { Config } from "./config.js";
import { createLogger } from "./logger.js";
import { startGateway } from "./gateway.js";
import { ListenError } from "./http/listen-error.js";

/** Starts the gateway and returns; the process then runs until a signal stops it (and exits). */
export async function serve(config: Config): Promise<void> {
  const logger = createLogger(config.logLevel, undefined, config.logFormat);
  const started = performance.now();
  const running = await startGateway(config, logger);
  logger.info({ url: running.url, domain: config.xmpp.domain, ms: Math.round(performance.now() - started) }, "balcony listening");
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down");
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    await running.close();
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
}

/**
 * How a start that failed (after the configuration was read) ends the process: exit 1. A listener
 * that could not start is one line naming HOST and PORT (src/http/listen-error.ts), not a stack.
 */
export function startFailed(err: unknown): never {
  const why = err instanceof ListenError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err);
  process.stderr.write(`balcony: failed to start: ${why}\n`);
  process.exit(1);
}
