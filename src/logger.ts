// The process's logger (pino): JSON lines by default, or lines for a person to read
// (LOG_FORMAT=pretty, through pino-pretty: colour only on a terminal). Tokens and secrets never
// reach the logs, in either format.
import pino, { type Logger } from "pino";
import pretty from "pino-pretty";

export type LogFormat = "json" | "pretty";

/** What a request's log lines show of it (Fastify's fields), without a stream ticket in its URL. */
interface LoggedRequest {
  method: string;
  url: string;
  host?: string;
  ip?: string;
  socket?: { remotePort?: number };
}
/** A query key that reads "ticket" once decoded, as the query parser decodes it (`%74icket` too: the ops audit of stop 65). */
function isTicketKey(key: string): boolean {
  try {
    return decodeURIComponent(key.replace(/\+/g, " ")).toLowerCase() === "ticket";
  } catch {
    return false;
  }
}

const requestSerializer = (req: LoggedRequest) => ({
  method: req.method,
  // GET /v1/events?ticket=: the ticket is a credential (EventSource puts it in the URL).
  url: typeof req.url === "string" ? req.url.replace(/([?&])([^=&#]*)=([^&#]*)/g, (all, sep: string, key: string) => (isTicketKey(key) ? `${sep}${key}=[redacted]` : all)) : req.url,
  host: req.host,
  remoteAddress: req.ip,
  remotePort: req.socket?.remotePort,
});

export function createLogger(level: string, destination?: pino.DestinationStream, format: LogFormat = "json"): Logger {
  const options = {
    level,
    redact: { paths: ["req.headers.authorization", "req.headers.cookie", "headers.authorization", "*.token", "*.ticket", "*.secret", "*.password"], censor: "[redacted]" },
    serializers: { req: requestSerializer },
  };
  if (format === "pretty") {
    const out = destination ?? process.stdout;
    return pino(options, pretty({ destination: out, colorize: !destination && process.stdout.isTTY, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname", sync: true }));
  }
  return destination ? pino(options, destination) : pino(options);
}

