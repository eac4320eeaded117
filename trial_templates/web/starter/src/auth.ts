import { readFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";

export interface User {
  name: string;
  token: string;
  teams: string[];
}

/** Users from a JSON file: {"users": [{"name", "token", "teams": [...]}]}. */
export function loadUsers(path: string): User[] {
  const parsed = JSON.parse(readFileSync(path, "utf8")) as { users?: unknown };
  if (!Array.isArray(parsed.users)) throw new Error(`${path}: expected {"users": [...]}`);
  return parsed.users.map((u: Partial<User>, i: number) => {
    if (typeof u.name !== "string" || typeof u.token !== "string" || !Array.isArray(u.teams)) {
      throw new Error(`${path}: users[${i}] needs a name, a token and teams`);
    }
    return { name: u.name, token: u.token, teams: u.teams.map(String) };
  });
}

/** The token from `Authorization: Bearer …` (API clients) or the `token` cookie (the browser). */
export function tokenOf(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (header?.startsWith("Bearer ")) return header.slice("Bearer ".length).trim();
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const [name, ...value] = part.trim().split("=");
    if (name === "token") return decodeURIComponent(value.join("="));
  }
  return undefined;
}

export function authenticate(users: User[], req: IncomingMessage): User | undefined {
  const token = tokenOf(req);
  return token === undefined ? undefined : users.find((u) => u.token === token);
}
