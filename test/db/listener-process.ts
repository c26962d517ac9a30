// An instance's notification listener in a process of its own, for tests that hang it (SIGSTOP)
// the way an instance hangs: `node --import tsx test/db/listener-process.ts <database url>
// <stale-after ms> [busy|link]`. Prints one JSON line per fact: {"ready":true} once it listens,
// {"payload":…} for each notification on the events channel whose payload does not start with
// "flood-", {"reconnected":true} when it was told it may have missed something (payload null),
// {"heard":n} every second (how many it has had in all). "busy": every notification also costs
// 20 ms of CPU and starts a 1 s query on a pool of one connection, so the handlers lag far behind
// while the event loop still runs.
import pg from "pg";
import { CHANNELS, Notifications } from "../../src/db/notify.js";

const [url, staleAfter, mode] = process.argv.slice(2);
const say = (fact: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(fact)}\n`);
const pool = new pg.Pool({ connectionString: url, max: 1 });
const notifications = new Notifications(url!, (msg, err, fields) => say({ log: msg, err: err === undefined ? undefined : String(err), ...fields }), Number(staleAfter));
let heard = 0;
notifications.on(CHANNELS.events, (payload) => {
  if (payload === null) return say({ reconnected: true });
  heard++;
  if (mode === "busy") {
    const until = performance.now() + 20;
    while (performance.now() < until);
    void pool.query("SELECT pg_sleep(1)").catch(() => undefined);
  }
  if (!payload.startsWith("flood-")) say({ payload });
});
await notifications.start();
// "link": the instance's own component link is up (XMPP_LINK_MODE=all), advertised on this connection.
if (mode === "link") notifications.advertiseLink(true);
setInterval(() => say({ heard }), 1000);
say({ ready: true });
