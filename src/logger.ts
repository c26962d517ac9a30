// The process's logger (pino): JSON lines by default, or lines for a person to read
// (LOG_FORMAT=pretty, through pino-pretty: colour only on a terminal). Tokens and secrets never
// reach the logs, in either format.
import pino, { type Logger } from "pino";
import pretty from "pino-pretty";

export type LogFormat = "json" | "pretty";

export function createLogger(level: string, destination?: pino.DestinationStream, format: LogFormat = "json"): Logger {
  const options = {
    level,
    redact: { paths: ["req.headers.authorization", "req.headers.cookie", "headers.authorization", "*.token", "*.secret", "*.password"], censor: "[redacted]" },
  };
  if (format === "pretty") {
    const out = destination ?? process.stdout;
    return pino(options, pretty({ destination: out, colorize: !destination && process.stdout.isTTY, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname", sync: true }));
  }
  return destination ? pino(options, destination) : pino(options);
}

