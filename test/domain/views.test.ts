// The message view's status (src/domain/views.ts): always one of API.md's
// `queued|sent|delivered|failed`, whatever is stored.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { messageView, type MessageRecord } from "../../src/domain/views.js";

const record = (direction: "in" | "out", status: string): MessageRecord => ({
  id: "3b241101-e2bb-4255-8caf-4136c566a962",
  direction,
  from: "juliet@example.net/balcony",
  to: "romeo@gw.example.com",
  type: "chat",
  body: "hi",
  subject: null,
  thread: null,
  lang: null,
  state: null,
  receipt: false,
  status,
  error: null,
  seq: 7,
  createdAt: new Date(0),
  updatedAt: new Date(0),
});

describe("messageView status", () => {
  it("an inbound message (stored `received`) reads delivered, and its direction tells it apart", () => {
    const view = messageView(record("in", "received"));
    assert.equal(view.status, "delivered");
    assert.equal(view.direction, "in");
    assert.equal(view.marker, null, "the XEP-0333 marker is another thing");
  });

  it("a group message the room has not reflected yet (`written`) reads queued; the others read as stored", () => {
    assert.equal(messageView(record("out", "written")).status, "queued");
    for (const s of ["queued", "sent", "delivered", "failed"]) assert.equal(messageView(record("out", s)).status, s);
  });
});
