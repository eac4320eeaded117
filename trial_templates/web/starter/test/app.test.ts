import { test } from "node:test";
import assert from "node:assert/strict";
import { start } from "./support";

test("health needs no credentials", async () => {
  const { server, call } = await start();
  try {
    const reply = await call("GET", "/health");
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.json, { status: "ok" });
  } finally {
    server.close();
  }
});

test("members create and list their team's notes, newest first", async () => {
  const { server, call } = await start();
  try {
    const first = await call("POST", "/api/teams/red/notes", { token: "t-alice", body: { title: "Standup", body: "9:30" } });
    assert.equal(first.status, 201);
    assert.equal(first.json.title, "Standup");
    assert.equal(first.json.author, "Alice");
    await call("POST", "/api/teams/red/notes", { token: "t-bob", body: { title: "Retro" } });
    const list = await call("GET", "/api/teams/red/notes", { token: "t-alice" });
    assert.deepEqual(list.json.notes.map((n: { title: string }) => n.title), ["Retro", "Standup"]);
  } finally {
    server.close();
  }
});

test("a note needs a title", async () => {
  const { server, call } = await start();
  try {
    const reply = await call("POST", "/api/teams/red/notes", { token: "t-alice", body: { title: "  " } });
    assert.equal(reply.status, 400);
    assert.ok(reply.json.error);
  } finally {
    server.close();
  }
});

test("teams are private: 401 without a token, 403 outside the team", async () => {
  const { server, call } = await start();
  try {
    assert.equal((await call("GET", "/api/teams/blue/notes")).status, 401);
    assert.equal((await call("GET", "/api/teams/blue/notes", { token: "nope" })).status, 401);
    assert.equal((await call("GET", "/api/teams/blue/notes", { token: "t-alice" })).status, 403);
    assert.equal((await call("GET", "/teams/blue", { token: "t-alice" })).status, 403);
    assert.equal((await call("POST", "/api/teams/blue/notes", { token: "t-alice", body: { title: "x" } })).status, 403);
  } finally {
    server.close();
  }
});

test("the board page shows the team's notes", async () => {
  const { server, call } = await start();
  try {
    await call("POST", "/api/teams/red/notes", { token: "t-alice", body: { title: "Release plan", body: "Friday\nafter lunch" } });
    const page = await call("GET", "/teams/red", { token: "t-bob" });
    assert.equal(page.status, 200);
    assert.match(page.type, /^text\/html/);
    assert.match(page.text, />Release plan</);
    assert.match(page.text, /Friday<br>after lunch/);
    assert.match(page.text, /Signed in as Bob/);
  } finally {
    server.close();
  }
});
