// Wiring only: database, repositories, the outbound port over the component link, the use cases,
// the XMPP adapter's inbound side and the HTTP app. Used by src/server.ts and the integration
// tests alike. Where data goes: README.md, "Architecture".
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import type { Config } from "./config.js";
import { Accounts as AccountStore } from "./db/accounts.js";
import { autocommit, openDatabase, type Database } from "./db/client.js";
import { inRoom } from "./db/room-lookups.js";
import { seesPresence } from "./db/roster.js";
import { startEmbeddedPostgres, type EmbeddedDb } from "./db/embedded.js";
import { EventNotifier } from "./db/event-notifier.js";
import { purgeEvents } from "./db/events.js";
import { LinkLease } from "./db/lease.js";
import { Notifications, CHANNELS } from "./db/notify.js";
import { Messages } from "./db/messages.js";
import { migrate } from "./db/migrate.js";
import { deadSeconds, onSessionEnded, Sessions } from "./db/sessions.js";
import { endedWindowSeconds, purgeSessionEnds } from "./db/session-ends.js";
import { buildApp } from "./http/app.js";
import { listenError } from "./http/listen-error.js";
import { HttpDrain } from "./http/drain.js";
import { Auth } from "./http/auth.js";
import { StreamTickets } from "./services/stream-tickets.js";
import { Metrics } from "./http/metrics.js";
import { createLogger } from "./logger.js";
import { Accounts } from "./services/accounts.js";
import { Delivery } from "./services/delivery.js";
import { EventFeed } from "./services/events.js";
import { Inbound } from "./services/inbound.js";
import { LinkControl } from "./services/link-control.js";
import { LinkUp } from "./services/link-up.js";
import { OnlineGate } from "./services/online-gate.js";
import { Messaging } from "./services/messaging.js";
import { Presence } from "./services/presence.js";
import { Roster } from "./services/roster.js";
import { Status } from "./services/status.js";
import { StreamSlots } from "./services/local-stream-slots.js";
import { RedisStreamSlots } from "./db/redis-slots.js";
import { redisProbe } from "./db/redis-probe.js";
import { Redis } from "ioredis";
import { routeInbound } from "./xmpp/inbound.js";
import { Blocklists } from "./db/blocklist.js";
import { MessageActions } from "./services/message-actions.js";
import { Conversations } from "./services/conversations.js";
import { Blocking } from "./services/blocking.js";
import { registerIqHandlers } from "./xmpp/iq.js";
import { LINK_CHECK_MS, XmppLink } from "./xmpp/link.js";
import { XmppOutbound } from "./xmpp/outbound.js";
import { REJOIN_SWEEP_MS } from "./domain/muc.js";
import { WebhookLanes } from "./db/webhook-lanes.js";
import { Webhooks as WebhookStore } from "./db/webhooks.js";
import { WebhookDispatcher } from "./services/webhook-dispatch.js";
import { Webhooks } from "./services/webhooks.js";
import { WebhookClient } from "./webhook/client.js";
import { Rooms } from "./services/rooms.js";
import { RoomSelfPings } from "./services/room-self-pings.js";
import { selfPingSweepMs } from "./domain/muc-self-ping.js";
import { Opened } from "./opened.js";
import { cadence } from "./cadence.js";
import { maintenance } from "./maintenance.js";

export interface RunningGateway {
  app: FastifyInstance;
  /** The component link (tests watch it and cut it). */
  link: XmppLink;
  db: Database;
  /** Signs and verifies tokens (the quick start mints its demo tokens with it). */
  auth: Auth;
  /** Base URL the HTTP server listens on. */
  url: string;
  /** drainMs: how long it still serves after the signal, at most (SHUTDOWN_DRAIN; src/serve.ts); 0 by default. */
  close(drainMs?: number): Promise<void>;
  /** What close() waits for now: "" before it began and once it is done. */
  closing(): string;
  /** Ends a drain under way at once (a second SIGTERM or SIGINT). */
  endDrain(): void;
}

/** Milliseconds since `start` (a performance.now()), for the start-up log. */
const since = (start: number) => Math.round(performance.now() - start);
/** Redis answers in well under a millisecond here; a command still unanswered after this is a hung Redis. */
const REDIS_COMMAND_TIMEOUT_MS = 500;

// Start-up logs a line as each slow phase begins and ends (with its duration), so a start that
// hangs shows where: the embedded PostgreSQL, the migrations, the component link.
async function database(config: Config, logger: Logger, opened: Opened): Promise<{ db: Database; url: string; embedded: EmbeddedDb | null }> {
  let embedded: EmbeddedDb | null = null;
  let url = config.databaseUrl;
  let t = performance.now();
  if (!url) {
    logger.info({ dataDir: config.dataDir }, "starting the embedded PostgreSQL");
    const started = await startEmbeddedPostgres(config.dataDir, config.embeddedPgPort, (m) => logger.info(m), config.dataDirIsDefault);
    opened.add(() => started.stop());
    logger.info({ port: config.embeddedPgPort, ms: since(t) }, "embedded PostgreSQL started");
    embedded = started;
    url = embedded.url;
  }
  const db = openDatabase(url, config.dbPoolMax);
  opened.add(() => db.close());
  t = performance.now();
  logger.info("applying database migrations");
  const applied = await migrate(db.pool, undefined, () => logger.info("another process is applying migrations: waiting for it"));
  logger.info({ applied: applied.length, ...(applied.length ? { migrations: applied } : {}), ms: since(t) }, "database migrations applied");
  return { db, url, embedded };
}

export async function startGateway(config: Config, logger: Logger = createLogger(config.logLevel, undefined, config.logFormat)): Promise<RunningGateway> {
  const opened = new Opened();
  try {
    return await start(config, logger, opened);
  } catch (err) {
    // Nothing was served, whichever step failed (the migrations, the LISTEN connection, the app, the
    // link, the listen): let go of what was opened so far (the component link and its lease, at once
    // for another instance; the database; the embedded PostgreSQL), so that the caller's process can end.
    await opened.release((e) => logger.warn({ err: String(e) }, "releasing what the failed start opened"));
    throw err;
  }
}

/** startGateway's wiring; what it opens is added to `opened` as it goes, for a start that fails. */
async function start(config: Config, logger: Logger, opened: Opened): Promise<RunningGateway> {
  const { db, url, embedded } = await database(config, logger, opened);
  const log = logger.child({ part: "xmpp" });
  const domain = config.xmpp.domain;
  const metrics = new Metrics();
  const counters = { messagesAccepted: (n: number) => metrics.messagesAccepted.inc(n), messagesWritten: (n: number) => metrics.written.inc(n) };

  // Storage.
  const accountStore = new AccountStore(db.prisma);
  const messages = new Messages(db.prisma, db.pool);
  const sessions = new Sessions(db.prisma, db.pool, deadSeconds(config.sessionGraceSeconds, config.sseHeartbeatMs));
  // A hung instance's listener is ended after the lease's timeout: both prove they are alive at
  // least four times within it (livenessBeatMs).
  const notifications = new Notifications(url, (m, err, fields) => logger.warn(fields ?? { err: String(err ?? "") }, m), config.xmpp.linkLeaseTimeoutMs);
  opened.add(() => notifications.stop());
  await notifications.start();
  accountStore.listen(notifications);
  const blocklists = new Blocklists(db.prisma);
  blocklists.listen(notifications);

  // The component link, who holds it, and the outbound port over it.
  const link = new XmppLink({ ...config.xmpp, log });
  const control = new LinkControl(new LinkLease(url, db.pool), link, notifications, { mode: config.xmpp.linkMode, pollMs: 1000, downGraceMs: config.xmpp.linkDownGraceMs, leaseTimeoutMs: config.xmpp.linkLeaseTimeoutMs }, log, () => delivery.kick());
  const out = new XmppOutbound(link);

  // The use cases: they record stanzas with their state changes; Delivery sends them from the holder.
  // After each link-up the drain waits for the rooms' rejoin, recorded ahead of what is queued.
  const gate = new OnlineGate(control);
  const delivery = new Delivery(db, out, gate, log, counters);
  const presence = new Presence(db, sessions, delivery, domain, { graceSeconds: config.sessionGraceSeconds }, log);
  const accounts = new Accounts(accountStore, delivery, domain, config.autoProvision, config.deletionRevokesTokens);
  // Each refers to the other (XEP-0191 §3.3): a block leaves the rooms it covers; a blocked room is not joined.
  const blocking: Blocking = new Blocking(db, blocklists, delivery, (tx, send, account, covered) => rooms.leaveBlocked(tx, send, account, covered));
  // Streams here take what inbound appended here as it is, instead of reading it back; a join
  // request wakes when the account's log grows (the room's answers are logged), on any instance.
  const notifier = new EventNotifier(notifications);
  const rooms = new Rooms(db, delivery, domain, blocking, { growth: notifier, linkDown: async () => (await control.readiness()) === "down" });
  const messaging = new Messaging(messages, delivery, out, domain, counters, (accountId, room) => rooms.nickIn(accountId, room), (accountId, to) => blocking.assertNotBlocked(accountId, to, "body.to"));
  const inbound = new Inbound(db, accountStore, { messages, sessions }, delivery, out, domain, log, blocklists, notifier);
  // Rate limits and stream caps: across instances in Redis when configured, else per instance.
  // No offline queue: while Redis is unreachable a command fails at once, and the limits fail open
  // (skipOnError, src/db/redis-slots.ts) rather than hold every request for the reconnects. A
  // command timeout for a Redis that keeps the connection but stops answering: requests then wait
  // at most that long before the limits fail open, not for ever.
  const redis = config.redisUrl
    ? new Redis(config.redisUrl, { maxRetriesPerRequest: 1, connectTimeout: 1000, commandTimeout: REDIS_COMMAND_TIMEOUT_MS, lazyConnect: false, enableOfflineQueue: false })
    : null;
  redis?.on("error", (err: Error) => logger.warn({ err: err.message }, "redis error"));
  const sharedSlots = redis ? new RedisStreamSlots(redis, config.maxStreamsPerAccount, 3 * config.sseHeartbeatMs, (o, m) => logger.warn(o, m)) : null;
  opened.add(async () => (await sharedSlots?.close(), redis?.disconnect()));
  const streamCap = sharedSlots ?? new StreamSlots(config.maxStreamsPerAccount);
  const endedWindow = endedWindowSeconds(config.sessionGraceSeconds, config.sseRetryMs);
  const events = new EventFeed(db, sessions, notifier, delivery, streamCap, domain, config.eventRetentionMs, blocking, endedWindow);
  // The ends this instance cannot have heard (committed before it listened, or while its listener
  // reconnects) are read from the table, after the handler is on: none falls between the two.
  const loadEnds = () => events.loadEnds().catch((err: unknown) => logger.warn({ err: String(err) }, "could not read the sessions ended lately; their streams' reconnects may open them again"));
  onSessionEnded(notifications, (accountId, resource) => events.endStreams(accountId, resource), () => void loadEnds());
  await loadEnds();

  // Webhooks: endpoints managed over HTTP, delivered from the event log by whichever instance leases each endpoint.
  const webhookStore = new WebhookStore(db.pool);
  const webhookLanes = new WebhookLanes(db.pool);
  const webhookClient = new WebhookClient({ allow: config.webhooks.allowPrivate, timeoutMs: config.webhooks.timeoutMs, userAgent: "Balcony-Webhooks/1.1", connections: config.webhooks.concurrency });
  const webhooks = new Webhooks(webhookStore, webhookClient, domain);
  const dispatcher = new WebhookDispatcher(webhookLanes, webhookClient, notifications, domain, config.webhooks, {
    attempt: (outcome, seconds) => {
      metrics.webhookAttempts.inc({ outcome });
      metrics.webhookDuration.observe({ outcome }, seconds);
    },
  }, logger.child({ part: "webhooks" }), (account, seqs) => events.answerReceipts(account, seqs));
  metrics.webhookDepths = () => webhookLanes.depths();

  // The XMPP adapter's inbound side, and what follows the link going up or down.
  const selfPings = new RoomSelfPings(delivery, domain, config.roomSelfPingMs);
  routeInbound(link, inbound, rooms, selfPings, log);
  registerIqHandlers(link, domain, accounts, sessions, blocking, { inRoom: (id, room) => inRoom(autocommit(db.pool), id, room) }, { seesPresence: (id, jid) => seesPresence(autocommit(db.pool), id, jid) });
  // XEP-0045: the link holder is every joined account's occupant: it enters their rooms again (or
  // another instance did, XMPP_LINK_MODE=all), publishes presence again, and then drains.
  const linkUp = new LinkUp(rooms, presence, config.xmpp.linkMode === "all", log);
  link.on("online", () => {
    control.linkChanged(true);
    gate.up(() => linkUp.up(), () => delivery.kick(), (err: unknown) => log.warn({ err: String(err) }, "rejoining rooms failed"));
  });
  link.on("offline", () => (control.linkChanged(false), linkUp.down(), gate.down()));
  notifications.on(CHANNELS.outbox, (origin) => delivery.woken(origin));
  delivery.start();
  presence.start();
  // Periodic work runs on the process's one clock (src/cadence.ts), sharing its wake-ups.
  // Rooms' rejoins refused for now (their service unavailable) go out again when due, from the holder.
  const stopSweeps = [
    // A component connection gone silent is closed, to connect again (XmppLink.checkAlive).
    cadence.every(LINK_CHECK_MS, () => link.checkAlive()),
    cadence.every(REJOIN_SWEEP_MS, () => {
      if (control.holder && link.online) void rooms.retryRejoins().catch((err: unknown) => log.warn({ err: String(err) }, "retrying rooms' rejoins failed"));
    }),
  ];
  // Joined rooms quiet for ROOM_SELF_PING are asked whether the account is still in them (XEP-0410).
  if (config.roomSelfPingMs) {
    stopSweeps.push(
      cadence.every(selfPingSweepMs(config.roomSelfPingMs), () => {
        if (control.holder && link.online) void selfPings.sweep().catch((err: unknown) => log.warn({ err: String(err) }, "self-pinging quiet rooms failed"));
      }),
    );
  }

  const tickets = new StreamTickets(db);
  stopSweeps.push(
    maintenance(config.maintenanceIntervalMs, [
      () => purgeEvents(db.prisma, new Date(Date.now() - config.eventRetentionMs)),
      () => sessions.purgeStale(new Date(Date.now() - config.eventRetentionMs)),
      () => purgeSessionEnds(db.pool, endedWindow),
      () => messages.releaseExpiredKeys(),
      () => webhookStore.purgeDeliveries(new Date(Date.now() - config.eventRetentionMs)),
      () => tickets.purgeExpired(),
    ]),
  );
  const stopPeriodic = () => (stopSweeps.forEach((stop) => stop()), presence.stop());
  opened.add(() => delivery.stop());
  opened.add(stopPeriodic);

  const shutdown = new AbortController();
  const auth = new Auth(config.jwt, domain);
  const gw = { config, accounts, messaging, roster: new Roster(db, delivery, blocking), blocking, messageActions: new MessageActions(delivery, out, domain, (accountId, jid, tx) => blocking.blocksJid(accountId, jid, tx)), conversations: new Conversations(db), presence, events, webhooks, rooms, status: new Status(db, out, control, redis ? redisProbe(redis) : null), auth, tickets, metrics, shutdown: shutdown.signal };
  const app = await buildApp(gw, { logger, bodyLimit: config.bodyLimitBytes, logRequests: config.logRequests, redis });
  const http = new HttpDrain(app.server);
  /**
   * Orderly shutdown: end event streams with a retry hint and say "stopping" on /readyz; serve on
   * until requests stop coming and no connection is open, drainMs at most (src/http/drain.ts), then finish the
   * requests in flight, record what was sent, close the component stream cleanly, process what it
   * delivered, then close the database. The link and the webhook leases stay here through the
   * drain: what it accepts goes out on this link before it closes (on a lone instance, not at its
   * next start). Sessions are left as they are, so clients that reconnect within the grace period
   * see no presence flap.
   */
  let closing = "";
  const close = async (drainMs = 0) => {
    stopPeriodic();
    shutdown.abort();
    closing = "the drain";
    const started = performance.now();
    const open = await http.drain(drainMs);
    if (drainMs > 0) logger.info({ ms: since(started), open }, open ? "drain period over: ending the idle connections left, finishing the requests in flight" : "drained: no connection left");
    // Named, so that a close that hangs says what it waits for (src/serve.ts's forced exit logs it).
    const steps: [string, () => unknown][] = [
      ["requests in flight", () => app.close()], ["webhook deliveries", () => dispatcher.stop()], ["webhook connections", () => webhookClient.close()],
      ["messages being accepted", () => messaging.idle()], ["delivery to the link", () => delivery.stop()], ["the component link", () => control.stop()],
      ["stanzas received", () => inbound.idle()], ["streams' closes", () => events.idle()], // written in batches: flushed here
      ["the LISTEN connection", () => notifications.stop()], ["Redis", async () => (await sharedSlots?.close(), redis?.disconnect())],
      ["the database", () => db.close()], ["the embedded PostgreSQL", () => embedded?.stop()],
    ];
    for (const [name, step] of steps) {
      closing = name;
      await step();
    }
    closing = "";
  };
  // From here on close() lets go of everything, whatever fails next: the stop() of a link control or
  // a dispatcher that never started, or failed to, lets go of what it holds and nothing else.
  opened.closedBy(close);
  const t = performance.now();
  log.info({ service: config.xmpp.service, domain, mode: config.xmpp.linkMode }, "connecting to XMPP server");
  await control.start();
  if (link.online) log.info({ ms: since(t) }, "component connected");
  else if (!control.holder) log.info({ ms: since(t) }, "standby: another instance holds the component link");
  else log.info({ ms: since(t) }, "component link not up yet: starting without it, retrying in the background");
  await dispatcher.start();
  let address: string;
  try {
    address = await app.listen({ host: config.host, port: config.port });
  } catch (err) {
    throw listenError(err, config.host, config.port); // startGateway releases what was opened (close)
  }

  return { app, link, db, auth, url: address.replace("[::1]", "127.0.0.1"), close, closing: () => closing, endDrain: () => http.end() };
}
