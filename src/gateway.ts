// Wires the gateway's parts together: database, component link, outbox, inbound routing, event
// notifier and the HTTP app. Used by src/server.ts and by the integration tests alike.
import { randomUUID } from "node:crypto";
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { buildApp, createLogger } from "./app.js";
import type { Config } from "./config.js";
import { Accounts } from "./db/accounts.js";
import { openDatabase, type Database } from "./db/client.js";
import { startEmbeddedPostgres, type EmbeddedDb } from "./db/embedded.js";
import { claimReceipts, EventNotifier, purgeEvents } from "./db/events.js";
import { Messages } from "./db/messages.js";
import { migrate } from "./db/migrate.js";
import { Sessions } from "./db/sessions.js";
import { Auth } from "./http/auth.js";
import type { Gateway } from "./http/context.js";
import { StreamSlots } from "./http/limits.js";
import { Metrics } from "./http/metrics.js";
import { deleteAccount } from "./services/accounts.js";
import { Messaging } from "./services/messaging.js";
import { Presence } from "./services/presence.js";
import { Inbound } from "./xmpp/inbound.js";
import { registerIqHandlers } from "./xmpp/iq.js";
import { XmppLink } from "./xmpp/link.js";
import { Outbox } from "./xmpp/outbox.js";
import { receiptStanza } from "./xmpp/stanzas.js";

export interface RunningGateway {
  gw: Gateway;
  app: FastifyInstance;
  outbox: Outbox;
  /** Base URL the HTTP server listens on. */
  url: string;
  close(): Promise<void>;
}

const JANITOR_MS = 10 * 60_000;

export async function startGateway(config: Config, logger: Logger = createLogger(config.logLevel)): Promise<RunningGateway> {
  let embedded: EmbeddedDb | null = null;
  let url = config.databaseUrl;
  if (!url) {
    embedded = await startEmbeddedPostgres(config.dataDir, config.embeddedPgPort, (m) => logger.info(m), config.dataDirIsDefault);
    url = embedded.url;
  }
  const db: Database = openDatabase(url, config.dbPoolMax);
  const applied = await migrate(db.pool);
  if (applied.length) logger.info({ applied }, "database migrations applied");

  const log = logger.child({ part: "xmpp" });
  const link = new XmppLink({ ...config.xmpp, log });
  const accounts = new Accounts(db.prisma);
  const messages = new Messages(db.prisma, db.pool);
  const sessions = new Sessions(db.prisma);
  const metrics = new Metrics();
  const outbox = new Outbox(db.prisma, messages, link, log, (n) => metrics.written.inc(n));
  const notifier = new EventNotifier(url, (m, err) => logger.warn({ err: String(err ?? "") }, m));
  await notifier.start();
  const domain = config.xmpp.domain;
  const shutdown = new AbortController();
  const presence = new Presence(db, link, domain, config.sessionGraceSeconds, config.sseHeartbeatMs, log);

  const gw: Gateway = {
    config,
    db,
    accounts,
    messages,
    sessions,
    messaging: new Messaging(messages, outbox, (n) => metrics.messagesAccepted.inc(n)),
    presence,
    notifier,
    link,
    auth: new Auth(config.jwt, domain),
    metrics,
    streamSlots: new StreamSlots(config.maxStreamsPerAccount),
    shutdown: shutdown.signal,
    deleteAccount: (localpart) => deleteAccount(db, link, accounts, domain, localpart),
    async endSession(accountId, resource) {
      const a = await db.prisma.account.findUnique({ where: { id: accountId }, select: { localpart: true } });
      return a ? presence.endSession({ id: accountId, jid: `${a.localpart}@${domain}` }, resource) : false;
    },
    async answerReceipts(accountId, localpart, seqs) {
      for (const r of await claimReceipts(db.prisma, accountId, seqs)) link.send(receiptStanza(`${localpart}@${domain}`, r.to, r.id, randomUUID()));
    },
  };

  const inbound = new Inbound({ db, domain, accounts, messages, sessions, link, log });
  registerIqHandlers(link, domain, accounts);
  outbox.start();
  presence.start();

  const janitor = setInterval(() => {
    void purgeEvents(db.prisma, new Date(Date.now() - config.eventRetentionMs)).catch(() => undefined);
    void messages.releaseExpiredKeys().catch(() => undefined);
  }, JANITOR_MS);
  janitor.unref();

  const app = await buildApp(gw, { logger, bodyLimit: config.bodyLimitBytes, logRequests: config.logRequests });
  await link.start();
  const address = await app.listen({ host: config.host, port: config.port });

  return {
    gw,
    app,
    outbox,
    url: address.replace("[::1]", "127.0.0.1"),
    /**
     * Orderly shutdown: end event streams with a retry hint, stop taking requests and finish the
     * ones in flight, record what was sent, close the component stream cleanly, process what it
     * delivered, then close the database. Sessions are left as they are, so clients that
     * reconnect within the grace period see no presence flap.
     */
    async close() {
      clearInterval(janitor);
      presence.stop();
      shutdown.abort();
      await app.close();
      await gw.messaging.idle();
      await outbox.stop();
      await link.stop();
      await inbound.idle();
      await notifier.stop();
      await db.close();
      await embedded?.stop();
    },
  };
}
