// Mints a token for an operator: `npm run token -- --admin` (an admin token for the first
// steps), or `npm run token -- --account romeo [--resource phone] [--ttl 3600]`.
// The same minting as `balcony token` (src/cli/token.ts), with this script's older flags: signs
// with JWT_SECRET from the environment, as the gateway verifies; without it there, from `.env`
// when there is one (the quick start writes it), as `balcony --env .env` would.
import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { CliError } from "../src/cli/common.js";
import { mintToken } from "../src/cli/token.js";
import { ConfigError, loadConfig } from "../src/config.js";

const USAGE = "usage: npm run token -- --admin | --account <localpart> [--resource <r>] [--ttl <seconds or 1h, 7d>]";

try {
  const { values } = parseArgs({
    options: {
      admin: { type: "boolean", default: false },
      account: { type: "string" },
      resource: { type: "string" },
      ttl: { type: "string", default: "86400" },
    },
  });
  // Variables already set in the environment win over the file's.
  if (existsSync(".env")) process.loadEnvFile(".env");
  const config = loadConfig(process.env, { XMPP_SECRET: "unused" });
  const { token } = mintToken(config, { account: values.account, admin: values.admin, ttl: values.ttl, resource: values.resource });
  process.stdout.write(token + "\n");
} catch (err) {
  if (!(err instanceof CliError || err instanceof ConfigError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS"))) throw err;
  process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
  process.exit(2);
}
