import type { IncomingMessage, ServerResponse } from "node:http";
import { authenticate, type User } from "./auth";
import { boardPage } from "./pages";
import { Store } from "./store";

export interface AppOptions {
  users: User[];
  /** The clock notes are stamped with (tests pass their own). */
  now?: () => Date;
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const MAX_BODY_BYTES = 64 * 1024;
const MAX_TITLE = 200;
const MAX_NOTE_BODY = 10_000;

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "Content-Type": "application/json; charset=utf-8" });
  res.end(JSON.stringify(body));
}

function sendHtml(res: ServerResponse, status: number, page: string): void {
  res.writeHead(status, { "Content-Type": "text/html; charset=utf-8" });
  res.end(page);
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  // Only JSON: a cross-site HTML form cannot send it, so the cookie alone cannot post notes.
  if (!(req.headers["content-type"] ?? "").startsWith("application/json")) {
    throw new HttpError(415, "send the body as application/json");
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, "request body too large");
    chunks.push(chunk as Buffer);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw new HttpError(400, "the body is not valid JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new HttpError(400, "the body must be a JSON object");
  }
  return parsed as Record<string, unknown>;
}

/** The signed-in user, who must belong to `team`: 401 without valid credentials, 403 outside the team. */
function member(users: User[], req: IncomingMessage, team: string): User {
  const user = authenticate(users, req);
  if (!user) throw new HttpError(401, "sign in: send Authorization: Bearer <token>");
  if (!user.teams.includes(team)) throw new HttpError(403, `you are not a member of team ${team}`);
  return user;
}

export function createApp(options: AppOptions): Handler {
  const { users } = options;
  const store = new Store(options.now);

  async function route(req: IncomingMessage, res: ServerResponse, api: boolean): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    const path = url.pathname;
    const method = req.method ?? "GET";
    let m: RegExpMatchArray | null;

    if (method === "GET" && path === "/health") {
      return sendJson(res, 200, { status: "ok" });
    }
    if (method === "GET" && (m = path.match(/^\/teams\/([a-z0-9-]+)$/))) {
      const team = m[1];
      const user = member(users, req, team);
      return sendHtml(res, 200, boardPage(team, user, store.notesOf(team)));
    }
    if (api && (m = path.match(/^\/api\/teams\/([a-z0-9-]+)\/notes$/))) {
      const team = m[1];
      if (method === "GET") {
        member(users, req, team);
        return sendJson(res, 200, { notes: store.notesOf(team) });
      }
      if (method === "POST") {
        const user = member(users, req, team);
        const body = await readJson(req);
        const title = typeof body.title === "string" ? body.title.trim() : "";
        const text = body.body === undefined ? "" : body.body;
        if (!title || title.length > MAX_TITLE) {
          throw new HttpError(400, `title: a string of 1 to ${MAX_TITLE} characters`);
        }
        if (typeof text !== "string" || text.length > MAX_NOTE_BODY) {
          throw new HttpError(400, `body: a string of at most ${MAX_NOTE_BODY} characters`);
        }
        return sendJson(res, 201, store.addNote(team, user.name, title, text));
      }
    }
    throw new HttpError(404, "not found");
  }

  return (req, res) => {
    const api = (req.url ?? "").startsWith("/api/") || req.url === "/health";
    route(req, res, api).catch((error: unknown) => {
      const status = error instanceof HttpError ? error.status : 500;
      const message = error instanceof HttpError ? error.message : "internal error";
      if (status === 500) console.error(error);
      if (res.headersSent) return res.destroy();
      if (api) return sendJson(res, status, { error: message });
      res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8" });
      res.end(message + "\n");
    });
  };
}
