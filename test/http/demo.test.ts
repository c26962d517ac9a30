// The demo page (/demo) in a real headless Chromium (Debian's chromium, driven by playwright-core),
// against a real gateway, Postgres and Prosody, with Juliet, a real XMPP user, on the other side:
// Romeo pastes his token, approves Juliet's subscription request, adds her, sees her presence,
// sets his own, and they chat with typing states and a delivery receipt. A screenshot is kept in
// test/artifacts/demo.png. A session ended by DELETE stays ended in the browser: an EventSource's
// reconnect is refused (204, CLOSED), and the demo page does not open it again.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";
import { xml, type XmlElement, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { uniq, type TestGateway } from "../helpers/gateway.js";
import { startWorld, type XmppWorld } from "../helpers/xmpp-world.js";

// What the functions run in the page see (this file is compiled without the DOM library).
declare const document: { querySelector(selector: string): { textContent: string | null } | null };
declare const EventSource: new (url: string) => { readyState: number; close(): void };
/** A page's globals with the EventSource a test opened in it (inline in each page function: they run there). */
type PageGlobals = { es: InstanceType<typeof EventSource> };

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ARTIFACTS = fileURLToPath(new URL("../artifacts/", import.meta.url));
const CHAT_STATES = "http://jabber.org/protocol/chatstates";
const WAIT_MS = 10_000;

describe("the demo page in Chromium", () => {
  let world: XmppWorld<"juliet"> | undefined;
  let gw: TestGateway;
  let juliet: XmppUser;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  before(async () => {
    // Juliet fetches her roster first: Prosody delivers subscription answers and roster pushes
    // only to such "interested" resources (RFC 6121 §2.1.6).
    world = await startWorld("prosody", { juliet: "balcony" }, { roster: true });
    gw = world.gw;
    juliet = world.users.juliet;
    // --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
    page = await browser.newPage({ viewport: { width: 1100, height: 700 } });
    // Script errors and console errors (a CSP violation is one) fail the test at the end.
    page.on("pageerror", (err) => pageErrors.push(`pageerror: ${err.message}`));
    page.on("console", (msg) => void (msg.type() === "error" && pageErrors.push(`console: ${msg.text()}`)));
  });
  after(async () => {
    await browser?.close();
    await world?.stop();
  });

  const fromRomeo = (romeoJid: string) => (s: XmlElement) => s.attrs.from?.split("/")[0] === romeoJid;
  const text = (selector: string) => page.locator(selector).first().textContent({ timeout: WAIT_MS });
  /** Waits until the element's text matches (textContent, trimmed). */
  const textBecomes = (selector: string, pattern: RegExp) =>
    page.waitForFunction(
      ([sel, src, flags]) => new RegExp(src!, flags).test(document.querySelector(sel!)?.textContent?.trim() ?? ""),
      [selector, pattern.source, pattern.flags],
      { timeout: WAIT_MS },
    );

  it("connects with a token, approves and adds Juliet, shows presence both ways, and chats with typing and receipts", async () => {
    const romeo = uniq("romeo");
    const romeoJid = await gw.createAccount(romeo);
    const julietRow = `#roster li[data-jid="juliet@localhost"]`;

    // The token in the fragment (never sent to the server): the page connects by itself.
    await page.goto(`${gw.url}/demo#token=${gw.token(romeo)}`);
    await textBecomes("#stream-state", /^live$/);
    assert.match((await text("#me")) ?? "", new RegExp(`^${romeoJid}/demo-`));
    assert.equal(new URL(page.url()).hash, "", "the token is taken out of the address bar");

    // Juliet asks to see Romeo's presence; Romeo approves in the page.
    await juliet.send(xml("presence", { to: romeoJid, type: "subscribe" }));
    await page.click(`#requests li[data-jid="juliet@localhost"] button.approve`, { timeout: WAIT_MS });
    await juliet.waitFor((s) => s.is("presence") && s.attrs.type === "subscribed" && fromRomeo(romeoJid)(s), WAIT_MS);
    // RFC 6121 §3.1.5: once approved, she gets his current presence (the page went available).
    await juliet.waitFor((s) => s.is("presence") && !s.attrs.type && fromRomeo(romeoJid)(s), WAIT_MS);
    await page.waitForSelector(`#requests li`, { state: "detached", timeout: WAIT_MS });

    // Romeo adds Juliet; she approves, and her presence shows in his roster.
    await page.fill("#add-jid", "juliet@localhost");
    await page.click("#add-contact");
    await juliet.waitFor((s) => s.is("presence") && s.attrs.type === "subscribe" && fromRomeo(romeoJid)(s), WAIT_MS);
    await juliet.send(xml("presence", { to: romeoJid, type: "subscribed" }));
    await page.waitForSelector(`${julietRow}[data-show="available"]`, { timeout: WAIT_MS });
    await textBecomes(`${julietRow} .sub`, /^both$/);
    await juliet.send(xml("presence", {}, xml("show", {}, "away"), xml("status", {}, "On the balcony")));
    await page.waitForSelector(`${julietRow}[data-show="away"]`, { timeout: WAIT_MS });

    // Romeo sets his presence in the page; Juliet sees it.
    await page.selectOption("#show", "dnd");
    await page.fill("#status-text", "Under the window");
    await page.click("#set-presence");
    await juliet.waitFor((s) => s.is("presence") && fromRomeo(romeoJid)(s) && s.getChildText("show") === "dnd" && s.getChildText("status") === "Under the window", WAIT_MS);

    // Juliet types, then writes: the page shows her typing, then her message.
    await page.click(julietRow);
    await textBecomes("#chat-with", /^juliet@localhost$/);
    await juliet.send(xml("message", { to: romeoJid, type: "chat" }, xml("composing", { xmlns: CHAT_STATES })));
    await textBecomes("#typing", /juliet@localhost is typing/);
    await juliet.send(xml("message", { to: romeoJid, type: "chat" }, xml("body", {}, "Wherefore art thou Romeo?"), xml("active", { xmlns: CHAT_STATES })));
    await textBecomes("#messages li.in .body", /^Wherefore art thou Romeo\?$/);
    await textBecomes("#typing", /^$/);

    // Romeo types (Juliet sees "composing"), then sends (she gets the body, asking for a receipt).
    await page.locator("#compose").pressSequentially("With love's light wings", { delay: 5 });
    await juliet.waitFor((s) => s.is("message") && fromRomeo(romeoJid)(s) && s.getChild("composing", CHAT_STATES), WAIT_MS);
    await page.click("#send");
    const msg = await juliet.waitFor((s) => s.is("message") && fromRomeo(romeoJid)(s) && s.getChildText("body") === "With love's light wings", WAIT_MS);
    assert.ok(msg.getChild("request", "urn:xmpp:receipts"), "the page asks for a receipt");
    assert.ok(msg.getChild("active", CHAT_STATES), "and says Romeo is active again");
    await textBecomes("#messages li.out .body", /^With love's light wings$/);
    assert.equal(await page.inputValue("#compose"), "", "the compose box is cleared once the message is accepted");
    // Her receipt (XEP-0184) turns the message's status to delivered.
    await juliet.send(xml("message", { to: msg.attrs.from, id: `r-${uniq("")}` }, xml("received", { xmlns: "urn:xmpp:receipts", id: msg.attrs.id })));
    await textBecomes("#messages li.out .status", /^delivered$/);

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: `${ARTIFACTS}demo.png` });
    assert.deepEqual(pageErrors, []);
  });

  /** The account's sessions' resources, sorted. */
  const sessionsOf = async (token: string) => ((await gw.request("GET", "/v1/sessions", { token })).body.items as { resource: string }[]).map((s) => s.resource).sort();

  it("an EventSource whose session is DELETEd, with no event received, ends CLOSED: its reconnect got 204, and the session stays ended", async () => {
    const name = uniq("benvolio");
    await gw.createAccount(name);
    const token = gw.token(name);
    const minted = await gw.request("POST", "/v1/events/tickets", { token, headers: { "balcony-resource": "tab" } });
    assert.equal(minted.status, 201, minted.text);
    const fresh = await browser.newPage();
    try {
      // Any page of the gateway: the stream is same-origin, as the demo's is.
      await fresh.goto(`${gw.url}/readyz`);
      await fresh.evaluate((url) => void ((globalThis as unknown as PageGlobals).es = new EventSource(url)), `/v1/events?ticket=${encodeURIComponent(minted.body.ticket as string)}`);
      await fresh.waitForFunction(() => (globalThis as unknown as PageGlobals).es.readyState === 1, undefined, { timeout: WAIT_MS });
      assert.deepEqual(await sessionsOf(token), ["tab"]);
      assert.equal((await gw.request("DELETE", "/v1/sessions/tab", { token })).status, 204);
      // OPEN (1), CONNECTING (0) once the stream ends, then CLOSED (2): only a reconnect the server
      // refused gets there (its default SSE_RETRY is 2 s); a served one would be OPEN again.
      await fresh.waitForFunction(() => (globalThis as unknown as PageGlobals).es.readyState === 2, undefined, { timeout: WAIT_MS });
      assert.deepEqual(await sessionsOf(token), [], "the reconnect opened no session");
    } finally {
      await fresh.close();
    }
  });

  it("the demo page whose session is DELETEd says so and stays off, rather than open it again with a new ticket", async () => {
    const name = uniq("balthasar");
    const jid = await gw.createAccount(name);
    const token = gw.token(name);
    const fresh = await browser.newPage();
    try {
      await fresh.goto(`${gw.url}/demo#token=${token}`);
      await fresh.waitForFunction(() => document.querySelector("#stream-state")?.textContent?.trim() === "live", undefined, { timeout: WAIT_MS });
      const resource = ((await fresh.locator("#me").textContent({ timeout: WAIT_MS })) ?? "").slice(`${jid}/`.length);
      assert.match(resource, /^demo-/);
      assert.deepEqual(await sessionsOf(token), [resource]);
      assert.equal((await gw.request("DELETE", `/v1/sessions/${resource}`, { token })).status, 204);
      // Shown when the page would otherwise have opened a stream again (2 s after the refusal).
      await fresh.waitForFunction(() => document.querySelector("#stream-state")?.textContent?.trim() === "session ended", undefined, { timeout: WAIT_MS });
      assert.deepEqual(await sessionsOf(token), [], "the page opened no session again");
    } finally {
      await fresh.close();
    }
  });

  it("shows a clear error for a bad token and does not connect", async () => {
    const fresh = await browser.newPage();
    try {
      await fresh.goto(`${gw.url}/demo/`);
      await fresh.fill("#token", "not-a-token");
      await fresh.click("#connect");
      await fresh.waitForFunction(() => /Could not connect: 401/.test(document.querySelector("#login-error")?.textContent ?? ""), undefined, { timeout: WAIT_MS });
      assert.equal(await fresh.isVisible("#app"), false);
      assert.equal(await fresh.isVisible("#login"), true);
    } finally {
      await fresh.close();
    }
  });
});
