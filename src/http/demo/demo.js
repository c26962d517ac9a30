// Balcony's demo page: a small XMPP client on the HTTP API, with no build step. REST calls carry
// the pasted token; the event stream is an EventSource opened with a stream ticket (EventSource
// cannot send Authorization). Everything shown from the network is set as text, never as markup.

const $ = (id) => document.getElementById(id);
const bare = (jid) => jid.split("/")[0];
const TICKET_TTL_SECONDS = 300;
const PAUSED_AFTER_MS = 3000; // XEP-0085 §5.2: "paused" after a few seconds without typing

const state = {
  token: "",
  resource: sessionStorage.getItem("balcony-demo-resource") ?? `demo-${Math.random().toString(36).slice(2, 10)}`,
  lastId: null,
  stream: null,
  loaded: false,
  pending: [], // events that arrived while the first snapshot was loading
  roster: new Map(), // bare JID -> roster item
  presence: new Map(), // bare JID -> Map(resource -> {show, status})
  requests: new Map(), // bare JID -> request
  unread: new Map(), // bare JID -> count
  open: null, // the bare JID of the open chat
  typing: { sent: false, timer: 0 },
  outgoing: null, // {to, body, key}: the message being sent, kept with its key until it is accepted
};
sessionStorage.setItem("balcony-demo-resource", state.resource);

async function api(method, path, body, extra = {}) {
  const headers = { authorization: `Bearer ${state.token}`, "balcony-resource": state.resource, ...extra };
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new Error(`${res.status} ${data?.detail ?? data?.title ?? res.statusText}`);
  return data;
}

/** Runs an action, showing its failure instead of losing it. */
async function attempt(fn) {
  $("error").textContent = "";
  try {
    await fn();
  } catch (err) {
    $("error").textContent = String(err.message ?? err);
  }
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node[k] = v;
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function streamState(text, cls) {
  $("stream-state").textContent = text;
  $("stream-state").className = `state ${cls}`;
}

// --- The event stream -----------------------------------------------------------------------

async function openStream() {
  const { ticket, jid } = await api("POST", "/v1/events/tickets", { ttlSeconds: TICKET_TTL_SECONDS });
  $("me").textContent = `${jid}/${state.resource}`;
  const query = new URLSearchParams({ ticket, resource: state.resource });
  if (state.lastId !== null) query.set("since", state.lastId);
  const es = new EventSource(`/v1/events?${query}`);
  state.stream = es;
  let opened = false;
  es.onopen = () => {
    opened = true;
    streamState("live", "live");
  };
  es.onerror = () => {
    // CONNECTING: the browser retries by itself (same ticket, Last-Event-ID). CLOSED: the server
    // refused the stream: an expired ticket (mint a new one and resume after the last event), or
    // a 204 for a session that was ended (DELETE /v1/sessions/{resource}: it stays ended).
    streamState(es.readyState === EventSource.CLOSED ? "reconnecting" : "connection lost, retrying", "down");
    if (es.readyState === EventSource.CLOSED && state.stream === es) setTimeout(() => void resumeStream(opened).catch(() => es.onerror()), 2000);
  };
  for (const type of ["message", "presence", "subscription", "roster", "receipt", "message-status", "message-update", "resync"]) {
    es.addEventListener(type, (e) => {
      state.lastId = e.lastEventId;
      const ev = { type, data: JSON.parse(e.data) };
      if (state.loaded) apply(ev);
      else state.pending.push(ev);
    });
  }
}

/**
 * After the server refused a stream: a new one, unless the session the page was live on is gone.
 * Then it was ended (a session whose streams stop stays listed until the purge, EVENT_RETENTION
 * later): a new stream would open it again, undoing the "log this device out" the 204 kept.
 */
async function resumeStream(wasLive) {
  if (wasLive && !(await api("GET", "/v1/sessions")).items.some((s) => s.resource === state.resource)) {
    state.stream = null;
    streamState("session ended", "down");
    return;
  }
  await openStream();
}

function apply({ type, data }) {
  switch (type) {
    case "roster":
      if (data.removed) state.roster.delete(data.jid);
      else state.roster.set(data.item.jid, data.item);
      return renderRoster();
    case "presence": {
      const resources = state.presence.get(data.jid) ?? new Map();
      if (data.type === "unavailable") resources.delete(data.resource ?? "");
      else resources.set(data.resource ?? "", { show: data.show ?? "available", status: data.status });
      state.presence.set(data.jid, resources);
      return renderRoster();
    }
    case "subscription":
      if (data.type === "subscribe") state.requests.set(data.jid, data);
      else if (data.type === "unsubscribe") state.requests.delete(data.jid);
      return renderRequests();
    case "message":
      return onMessage(data);
    case "receipt":
      return setStatus(data.id, "delivered");
    case "message-status":
      return setStatus(data.id, `failed: ${data.error?.condition ?? "error"}`);
    case "message-update":
      return setStatus(data.id, data.status);
    case "resync":
      return void load();
  }
}

// --- Contacts, presence, requests -------------------------------------------------------------

function showOf(jid) {
  const resources = [...(state.presence.get(jid)?.values() ?? [])];
  if (resources.length === 0) return { show: "offline", status: null };
  const rank = ["chat", "available", "away", "xa", "dnd"];
  resources.sort((a, b) => rank.indexOf(a.show) - rank.indexOf(b.show));
  return resources[0];
}

function textOf(status) {
  if (!status) return "";
  return typeof status === "string" ? status : (Object.values(status)[0] ?? "");
}

function renderRoster() {
  const jids = new Set([...state.roster.keys(), ...state.unread.keys()]);
  $("roster").replaceChildren(
    ...[...jids].sort().map((jid) => {
      const item = state.roster.get(jid);
      const { show, status } = showOf(jid);
      const unread = state.unread.get(jid);
      return el(
        "li",
        { dataset: { jid, show }, className: jid === state.open ? "open" : "", title: textOf(status), onclick: () => void openChat(jid) },
        el("span", { className: `dot ${show}` }),
        el("span", { className: "name", textContent: item?.name || jid }),
        el("span", { className: "sub", textContent: item ? `${item.subscription}${item.ask ? " (asked)" : ""}` : "not in roster" }),
        unread ? el("span", { className: "unread", textContent: String(unread) }) : null,
      );
    }),
  );
}

function renderRequests() {
  $("no-requests").hidden = state.requests.size > 0;
  $("requests").replaceChildren(
    ...[...state.requests.keys()].map((jid) =>
      el(
        "li",
        { dataset: { jid } },
        el("span", { className: "name", textContent: jid }),
        el("button", { className: "approve", textContent: "Approve", onclick: () => answer(jid, "approve") }),
        el("button", { className: "deny", textContent: "Deny", onclick: () => answer(jid, "deny") }),
      ),
    ),
  );
}

function answer(jid, how) {
  return attempt(async () => {
    await api("POST", `/v1/roster/${encodeURIComponent(jid)}/${how}`);
    state.requests.delete(jid);
    renderRequests();
  });
}

/** The snapshot the stream's events then keep up to date. */
async function load() {
  const [roster, presence, requests] = await Promise.all([api("GET", "/v1/roster"), api("GET", "/v1/presence"), api("GET", "/v1/subscription-requests")]);
  state.roster = new Map(roster.items.map((i) => [i.jid, i]));
  state.presence = new Map(presence.items.map((p) => [p.jid, new Map(p.resources.map((r) => [r.resource, { show: r.show ?? "available", status: r.status }]))]));
  state.requests = new Map(requests.items.map((r) => [r.jid, r]));
  state.loaded = true;
  for (const ev of state.pending.splice(0)) apply(ev);
  renderRoster();
  renderRequests();
}

// --- Chat -------------------------------------------------------------------------------------

function messageNode(m) {
  const out = m.direction === "out";
  return el(
    "li",
    { className: `msg ${out ? "out" : "in"}`, dataset: { id: m.id } },
    el("span", { className: "body", textContent: typeof m.body === "string" ? m.body : textOf(m.body) }),
    out ? el("span", { className: "status", textContent: m.status }) : null,
  );
}

function addMessage(m) {
  if (document.querySelector(`#messages li[data-id="${CSS.escape(m.id)}"]`)) return;
  $("messages").append(messageNode(m));
  $("messages").lastElementChild.scrollIntoView({ block: "end" });
}

function setStatus(id, status) {
  const node = document.querySelector(`#messages li[data-id="${CSS.escape(id)}"] .status`);
  if (node && !(status === "sent" && node.textContent === "delivered")) node.textContent = status;
}

async function openChat(jid) {
  state.open = jid;
  state.unread.delete(jid);
  $("chat-with").textContent = jid;
  $("typing").textContent = "";
  $("compose").disabled = $("send").disabled = false;
  renderRoster();
  const page = await api("GET", `/v1/messages?${new URLSearchParams({ with: jid, limit: "50" })}`);
  if (state.open !== jid) return;
  $("messages").replaceChildren();
  for (const m of page.items.reverse()) if (m.body !== null) addMessage(m);
  $("compose").focus();
}

function onMessage(m) {
  const jid = bare(m.from);
  if (m.state && jid === state.open) $("typing").textContent = m.state === "composing" ? `${jid} is typing…` : "";
  if (m.body === null) return;
  if (jid === state.open) addMessage({ ...m, direction: "in" });
  else {
    state.unread.set(jid, (state.unread.get(jid) ?? 0) + 1);
    renderRoster();
  }
}

/** XEP-0085: "composing" once when typing starts, "paused" when it stops for a while. */
function onTyping() {
  const to = state.open;
  if (!to) return;
  clearTimeout(state.typing.timer);
  state.typing.timer = setTimeout(() => {
    state.typing.sent = false;
    void api("POST", "/v1/messages", { to, state: "paused" }).catch(() => undefined);
  }, PAUSED_AFTER_MS);
  if (state.typing.sent) return;
  state.typing.sent = true;
  void api("POST", "/v1/messages", { to, state: "composing" }).catch(() => undefined);
}

function send(e) {
  e.preventDefault();
  const body = $("compose").value;
  const to = state.open;
  if (!body.trim() || !to) return;
  clearTimeout(state.typing.timer);
  state.typing.sent = false;
  // The same text to the same contact after a failed attempt keeps its Idempotency-Key: a retried
  // click can never send the message twice. The receipt request lets "delivered" show.
  const o = state.outgoing;
  if (!o || o.to !== to || o.body !== body) state.outgoing = { to, body, key: crypto.randomUUID() };
  const { key } = state.outgoing;
  return attempt(async () => {
    const sent = await api("POST", "/v1/messages", { to, body, receipt: true, state: "active" }, { "idempotency-key": key });
    state.outgoing = null;
    $("compose").value = "";
    if (state.open === to) addMessage({ id: sent.id, direction: "out", body, status: sent.status });
  });
}

// --- Start ------------------------------------------------------------------------------------

async function connect(token) {
  state.token = token.trim();
  sessionStorage.setItem("balcony-demo-token", state.token);
  await openStream();
  await load();
  await api("PUT", "/v1/presence", { type: "available" });
  $("login").hidden = true;
  $("app").hidden = false;
}

$("login").addEventListener("submit", (e) => {
  e.preventDefault();
  $("login-error").textContent = "";
  connect($("token").value).catch((err) => {
    state.stream?.close();
    $("login-error").textContent = `Could not connect: ${err.message ?? err}`;
  });
});
$("presence-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const show = $("show").value;
  const status = $("status-text").value || undefined;
  const body = show === "unavailable" ? { type: "unavailable", status } : show === "available" ? { type: "available", status } : { type: "available", show, status };
  void attempt(() => api("PUT", "/v1/presence", body));
});
$("add-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const jid = $("add-jid").value.trim();
  if (jid) void attempt(async () => {
    await api("POST", `/v1/roster/${encodeURIComponent(jid)}/subscribe`);
    $("add-jid").value = "";
  });
});
$("compose-form").addEventListener("submit", send);
$("compose").addEventListener("input", onTyping);

// A token in the fragment (never sent to the server) or from this tab's earlier visit.
const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
if (fromHash) history.replaceState(null, "", location.pathname);
const saved = fromHash ?? sessionStorage.getItem("balcony-demo-token");
if (saved) {
  $("token").value = saved;
  $("login").requestSubmit();
}
