// The process's logger (pino, JSON lines). Tokens and secrets never reach the logs.
import pino, { type Logger } from "pino";

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const options = {
    level,
    redact: { paths: ["req.headers.authorization", "req.headers.cookie", "headers.authorization", "*.token", "*.secret", "*.password"], censor: "[redacted]" },
  };
  return destination ? pino(options, destination) : pino(options);
}

