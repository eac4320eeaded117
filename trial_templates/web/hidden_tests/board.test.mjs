// Hidden tests of the web template: black-box HTTP against the candidate's server at
// $TRIAL_SERVICE_URL (its own container; none of its code runs here). The server keeps notes
// in memory for its whole run, so every test makes its own notes and looks only at those.
// Users are the starter's config/users.json (the brief says they stay).
import { before, test } from "node:test";
import assert from "node:assert/strict";

const BASE = (process.env.TRIAL_SERVICE_URL ?? "http://127.0.0.1:8080").replace(/\/$/, "");
const ALICE = "dev-token-alice"; // team red
const BOB = "dev-token-bob"; // teams red and blue
const CAROL = "dev-token-carol"; // team blue

let counter = 0;
const unique = (label) => `${label} ${process.pid}-${++counter}`;

async function call(method, path, { token, body, headers = {} } = {}) {
  const sent = { ...headers };
  if (token) sent.Authorization = `Bearer ${token}`;
  if (body !== undefined) sent["Content-Type"] = "application/json";
  const response = await fetch(BASE + path, {
    method,
    headers: sent,
    body: body === undefined ? undefined : JSON.stringify(body),
    redirect: "manual",
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  const type = response.headers.get("content-type") ?? "";
  let json;
  if (type.startsWith("application/json")) json = JSON.parse(text);
  return { status: response.status, type, text, json };
}

async function addNote(team, token, title, body = "") {
  const reply = await call("POST", `/api/teams/${team}/notes`, { token, body: { title, body } });
  assert.equal(reply.status, 201, `creating a note on ${team}: ${reply.text}`);
  return reply.json;
}

const commentsPath = (team, id) => `/api/teams/${team}/notes/${id}/comments`;

async function addComment(team, id, token, text) {
  const reply = await call("POST", commentsPath(team, id), { token, body: { text } });
  assert.equal(reply.status, 201, `commenting on ${team} note ${id}: ${reply.text}`);
  return reply.json;
}

/** The page's text as a browser shows it: any escaping a server may use, decoded. */
function decoded(page) {
  return page
    .replace(/&#x([0-9a-f]+);/gi, (_, hex) => String.fromCodePoint(parseInt(hex, 16)))
    .replace(/&#([0-9]+);/g, (_, dec) => String.fromCodePoint(Number(dec)))
    .replace(/&(lt|gt|quot|apos|amp);/g, (_, name) => ({ lt: "<", gt: ">", quot: '"', apos: "'", amp: "&" })[name]);
}

/** `payload` is on the page as text, never as markup. */
function shownAsText(page, payload, where) {
  assert.ok(!page.includes(payload), `${where}: the page has the raw markup ${payload}`);
  assert.ok(decoded(page).includes(payload), `${where}: the text ${payload} is not on the page (escaped)`);
}

before(async () => {
  // The verifier waits for the port; tsc may still be warming up the first response.
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await call("GET", "/health")).status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`no answer from ${BASE}/health within 60 s`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
});

// ---- What works today (pass_to_pass) ----

test("health_needs_no_credentials", async () => {
  const reply = await call("GET", "/health");
  assert.equal(reply.status, 200);
  assert.deepEqual(reply.json, { status: "ok" });
});

test("members_create_and_list_notes_newest_first", async () => {
  const first = await addNote("red", ALICE, unique("Standup"), "9:30 in the kitchen");
  assert.equal(first.author, "Alice");
  assert.equal(first.team, "red");
  assert.equal(typeof first.id, "string");
  const second = await addNote("red", BOB, unique("Retro"));
  const list = await call("GET", "/api/teams/red/notes", { token: ALICE });
  assert.equal(list.status, 200);
  const ids = list.json.notes.map((n) => n.id);
  assert.ok(ids.indexOf(second.id) >= 0 && ids.indexOf(second.id) < ids.indexOf(first.id), "newest first");
  const bad = await call("POST", "/api/teams/red/notes", { token: ALICE, body: { title: "" } });
  assert.equal(bad.status, 400);
  assert.ok(bad.json.error);
});

test("teams_are_private_to_their_members", async () => {
  const note = await addNote("blue", CAROL, unique("Blue secret"));
  assert.equal((await call("GET", "/api/teams/blue/notes")).status, 401);
  assert.equal((await call("GET", "/api/teams/blue/notes", { token: "not-a-token" })).status, 401);
  assert.equal((await call("GET", "/api/teams/blue/notes", { token: ALICE })).status, 403);
  assert.equal((await call("GET", "/teams/blue", { token: ALICE })).status, 403);
  assert.equal((await call("GET", "/teams/blue")).status, 401);
  const list = await call("GET", "/api/teams/blue/notes", { token: BOB });
  assert.ok(list.json.notes.some((n) => n.id === note.id), "Bob is in blue");
});

test("board_page_lists_the_teams_notes", async () => {
  const red = await addNote("red", ALICE, unique("Red plan"), "ship on Friday");
  const blue = await addNote("blue", CAROL, unique("Blue plan"));
  const page = await call("GET", "/teams/red", { token: BOB });
  assert.equal(page.status, 200);
  assert.match(page.type, /^text\/html/);
  assert.ok(page.text.includes(red.title), "the red note is on the red board");
  assert.ok(page.text.includes("ship on Friday"));
  assert.ok(!page.text.includes(blue.title), "a blue note is not on the red board");
});

// ---- The brief (fail_to_pass) ----

test("board_links_each_note_to_its_page", async () => {
  const note = await addNote("red", ALICE, unique("Linked"));
  const page = await call("GET", "/teams/red", { token: ALICE });
  assert.match(page.text, new RegExp(`href=["']/teams/red/notes/${note.id}["']`));
});

test("comments_api_creates_and_lists_comments_oldest_first", async () => {
  const note = await addNote("red", ALICE, unique("Discuss"));
  const first = await addComment("red", note.id, BOB, "I can take it");
  assert.equal(typeof first.id, "string");
  assert.equal(first.noteId, note.id);
  assert.equal(first.author, "Bob");
  assert.equal(first.text, "I can take it");
  assert.ok(!Number.isNaN(Date.parse(first.createdAt)), "createdAt is an ISO time");
  const second = await addComment("red", note.id, ALICE, "thanks");
  const list = await call("GET", commentsPath("red", note.id), { token: ALICE });
  assert.equal(list.status, 200);
  assert.deepEqual(list.json.comments.map((c) => c.id), [first.id, second.id]);
  const other = await addNote("red", ALICE, unique("Quiet"));
  const none = await call("GET", commentsPath("red", other.id), { token: ALICE });
  assert.deepEqual(none.json, { comments: [] });
});

test("comments_are_validated", async () => {
  const note = await addNote("red", ALICE, unique("Validate"));
  for (const body of [{}, { text: "" }, { text: "   \n " }, { text: 42 }, { text: "x".repeat(2001) }]) {
    const reply = await call("POST", commentsPath("red", note.id), { token: ALICE, body });
    assert.equal(reply.status, 400, `${JSON.stringify(body).slice(0, 40)} answered ${reply.status}`);
    assert.equal(typeof reply.json?.error, "string");
  }
  await addComment("red", note.id, ALICE, "x".repeat(2000));
  const list = await call("GET", commentsPath("red", note.id), { token: ALICE });
  assert.equal(list.json.comments.length, 1, "only the valid comment was stored");
});

test("unknown_notes_are_404", async () => {
  const note = await addNote("red", ALICE, unique("Known"));
  // Positive control: a server with no note pages at all answers 404 to everything.
  assert.equal((await call("GET", `/teams/red/notes/${note.id}`, { token: ALICE })).status, 200);
  assert.equal((await call("GET", commentsPath("red", note.id), { token: ALICE })).status, 200);
  const missing = "999999999";
  assert.equal((await call("GET", `/teams/red/notes/${missing}`, { token: ALICE })).status, 404);
  assert.equal((await call("GET", commentsPath("red", missing), { token: ALICE })).status, 404);
  const post = await call("POST", commentsPath("red", missing), { token: ALICE, body: { text: "hello?" } });
  assert.equal(post.status, 404);
  assert.equal(typeof post.json?.error, "string");
});

test("note_pages_and_comments_are_private_to_the_team", async () => {
  const note = await addNote("blue", CAROL, unique("Blue only"));
  await addComment("blue", note.id, CAROL, "blue eyes only");
  assert.equal((await call("GET", `/teams/blue/notes/${note.id}`)).status, 401);
  assert.equal((await call("GET", commentsPath("blue", note.id))).status, 401);
  assert.equal((await call("GET", `/teams/blue/notes/${note.id}`, { token: ALICE })).status, 403);
  assert.equal((await call("GET", commentsPath("blue", note.id), { token: ALICE })).status, 403);
  const post = await call("POST", commentsPath("blue", note.id), { token: ALICE, body: { text: "let me in" } });
  assert.equal(post.status, 403);
  const list = await call("GET", commentsPath("blue", note.id), { token: BOB });
  assert.equal(list.status, 200, "Bob is in blue");
  assert.deepEqual(list.json.comments.map((c) => c.text), ["blue eyes only"]);
});

test("another_teams_note_is_not_found_under_your_own_team", async () => {
  // Note ids are not secret and not per team: a red member must not reach a blue note by
  // naming it under /teams/red/.
  const note = await addNote("blue", CAROL, unique("Blue roadmap"));
  await addComment("blue", note.id, CAROL, "confidential");
  const page = await call("GET", `/teams/red/notes/${note.id}`, { token: ALICE });
  assert.equal(page.status, 404);
  assert.ok(!page.text.includes("Blue roadmap") && !page.text.includes("confidential"));
  const read = await call("GET", commentsPath("red", note.id), { token: ALICE });
  assert.equal(read.status, 404);
  assert.ok(!read.text.includes("confidential"));
  const write = await call("POST", commentsPath("red", note.id), { token: ALICE, body: { text: "planted" } });
  assert.equal(write.status, 404);
  const list = await call("GET", commentsPath("blue", note.id), { token: CAROL });
  assert.deepEqual(list.json.comments.map((c) => c.text), ["confidential"], "nothing was added");
});

test("note_page_shows_the_note_and_its_comments_oldest_first", async () => {
  const note = await addNote("red", ALICE, unique("Offsite"), "Where do we go?");
  await addComment("red", note.id, BOB, "the lake, again");
  await addComment("red", note.id, ALICE, "the mountains this time");
  const page = await call("GET", `/teams/red/notes/${note.id}`, { token: BOB });
  assert.equal(page.status, 200);
  assert.match(page.type, /^text\/html/);
  for (const text of [note.title, "Where do we go?", "Alice", "Bob"]) {
    assert.ok(page.text.includes(text), `the page shows ${text}`);
  }
  // The comments are in the served HTML (rendered on the server), oldest first.
  const lake = page.text.indexOf("the lake, again");
  const mountains = page.text.indexOf("the mountains this time");
  assert.ok(lake >= 0 && mountains > lake, "both comments, oldest first");
});

// ---- The planted defect: note bodies go into the page unescaped (stored XSS) ----

const IMG = "<img src=x onerror=alert(document.cookie)>";
const SCRIPT = "<script>fetch('/x?'+document.cookie)</script>";

test("board_escapes_markup_in_note_titles_and_bodies", async () => {
  await addNote("red", ALICE, unique(`Title ${SCRIPT}`), `first line\n${IMG}`);
  const page = await call("GET", "/teams/red", { token: BOB });
  assert.equal(page.status, 200);
  shownAsText(page.text, SCRIPT, "board, title");
  shownAsText(page.text, IMG, "board, body");
  assert.ok(page.text.includes("first line"));
});

test("note_page_escapes_markup_in_the_note_and_its_comments", async () => {
  const note = await addNote("red", ALICE, unique(`Title ${SCRIPT}`), `body line\n${IMG}`);
  const evil = "<svg onload=alert(1)>";
  await addComment("red", note.id, BOB, `looks fine\n${evil}`);
  const page = await call("GET", `/teams/red/notes/${note.id}`, { token: ALICE });
  assert.equal(page.status, 200);
  shownAsText(page.text, SCRIPT, "note page, title");
  shownAsText(page.text, IMG, "note page, body");
  shownAsText(page.text, evil, "note page, comment");
  assert.ok(page.text.includes("looks fine"));
});
