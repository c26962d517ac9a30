// The typed client (src/client.ts) in use: sends one message, then follows the account's event
// stream and prints every event until the peer's reply arrives (and, with --receipt, the delivery
// receipt), or --max-events events went by. See --help.
import { parseArgs } from "node:util";
import { createBalconyClient, type StreamEvent } from "../src/client.js";

const HELP = `usage: node --import tsx scripts/example-client.ts --to <jid> [options]

Sends a message as the account of BALCONY_TOKEN, then prints the account's events (one line each:
"event <id> <type> <data as JSON>") until a message from <jid> arrives.

Environment:
  BALCONY_URL     the gateway (default http://127.0.0.1:8080)
  BALCONY_TOKEN   the account's JWT (required)

Options:
  --to <jid>          recipient (required)
  --body <text>       message body (default "Hello from the typed client")
  --receipt           request a XEP-0184 receipt, and wait for it as well as for the reply
  --max-events <n>    give up after n events (default 20)
  --timeout <s>       give up after s seconds (default 60)
  --since <id>        print events after this event id (default: where this session left off)
  -h, --help          this text

Exit status: 0 once the reply (and receipt) arrived, 1 when the message failed or nothing came, 2 on bad usage.`;

const bare = (jid: string) => jid.split("/")[0]!.toLowerCase();

/** One human line for the events this example cares about: `e.event` narrows `e.data`. */
function describe(e: StreamEvent): string | null {
  switch (e.event) {
    case "message":
      return `  ${e.data.from} says: ${typeof e.data.body === "string" ? e.data.body : JSON.stringify(e.data.body)}`;
    case "receipt":
      return `  ${e.data.from} received message ${e.data.id}`;
    case "message-status":
      return `  message ${e.data.id} failed: ${e.data.error.condition}${e.data.error.text ? ` (${e.data.error.text})` : ""}`;
    default:
      return null;
  }
}

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        to: { type: "string" },
        body: { type: "string", default: "Hello from the typed client" },
        receipt: { type: "boolean", default: false },
        "max-events": { type: "string", default: "20" },
        timeout: { type: "string", default: "60" },
        since: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const token = process.env.BALCONY_TOKEN;
  const maxEvents = Number(values["max-events"]);
  const timeout = Number(values.timeout);
  const problem = !values.to
    ? "--to is required"
    : !token
      ? "BALCONY_TOKEN is not set"
      : !(Number.isInteger(maxEvents) && maxEvents > 0)
        ? "--max-events must be a positive integer"
        : !(timeout > 0)
          ? "--timeout must be a positive number of seconds"
          : null;
  if (problem || !values.to || !token) {
    console.error(`${problem}\n\n${HELP}`);
    return 2;
  }

  const balcony = createBalconyClient({ baseUrl: process.env.BALCONY_URL ?? "http://127.0.0.1:8080", token });
  const { data: sent, error, response } = await balcony.POST("/v1/messages", {
    body: { to: values.to, body: values.body, receipt: values.receipt },
  });
  if (!sent) {
    // A problem document (typed as such), or whatever a proxy in between answered.
    console.error(`POST /v1/messages: ${response.status} ${typeof error === "object" ? `${error.code}: ${error.detail}` : String(error)}`);
    return 1;
  }
  console.log(`sent ${sent.id} to ${values.to}: ${sent.status}`);

  const peer = bare(values.to);
  let replied = false;
  let received = !values.receipt;
  let count = 0;
  for await (const e of balcony.events(values.since, { signal: AbortSignal.timeout(timeout * 1000) })) {
    console.log(`event ${e.id} ${e.event} ${JSON.stringify(e.data)}`);
    const line = describe(e);
    if (line) console.log(line);
    if (e.event === "message" && bare(e.data.from) === peer) replied = true;
    if (e.event === "receipt" && e.data.id === sent.id) received = true;
    if (e.event === "message-status" && e.data.id === sent.id) return 1;
    if (replied && received) {
      console.log(`done: ${peer} replied${values.receipt ? " and the receipt arrived" : ""}`);
      return 0;
    }
    if (++count >= maxEvents) break;
  }
  const missing = [replied ? "" : "no reply", received ? "" : "no receipt"].filter(Boolean).join(", ");
  console.log(`gave up after ${count} event(s)${count < maxEvents ? ` (${timeout} s or the stream ended)` : ""}: ${missing}`);
  return 1;
}

process.exitCode = await main();
