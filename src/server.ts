// Entry point: configuration, then the gateway; stops cleanly on SIGINT/SIGTERM (src/serve.ts,
// shared with `balcony start`).
import { ConfigError, loadConfig } from "./config.js";
import { serve, startFailed } from "./serve.js";

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`balcony: configuration error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  await serve(config);
}

main().catch(startFailed);
