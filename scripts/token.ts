// Mints a token for an operator: `npm run token -- --admin` (an admin token for the first
// steps), or `npm run token -- --account romeo [--resource phone] [--ttl 3600]`.
// Signs with JWT_SECRET from the environment (or .env), like the gateway verifies.
import { parseArgs } from "node:util";
import { loadConfig } from "../src/config.js";
import { Auth } from "../src/http/auth.js";

const { values } = parseArgs({
  options: {
    admin: { type: "boolean", default: false },
    account: { type: "string" },
    resource: { type: "string" },
    ttl: { type: "string", default: "86400" },
  },
});

const config = loadConfig({ XMPP_SECRET: "unused", ...process.env });
const auth = new Auth(config.jwt, config.xmpp.domain);
const account = values.account ?? (values.admin ? "admin" : undefined);
if (!account) {
  console.error("usage: npm run token -- --admin | --account <localpart> [--resource <r>] [--ttl <seconds>]");
  process.exit(2);
}
const { token } = auth.sign(account, Number(values.ttl), { admin: values.admin, resource: values.resource });
process.stdout.write(token + "\n");
