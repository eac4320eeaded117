import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createApp } from "../src/app";
import type { User } from "../src/auth";

export const USERS: User[] = [
  { name: "Alice", token: "t-alice", teams: ["red"] },
  { name: "Bob", token: "t-bob", teams: ["red", "blue"] },
  { name: "Carol", token: "t-carol", teams: ["blue"] },
];

export interface Reply {
  status: number;
  type: string;
  text: string;
  json: any;
}

/** The app on a free loopback port; `call` sends one request with a user's token. */
export async function start(): Promise<{ server: Server; call: Call }> {
  const server = createServer(createApp({ users: USERS }));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const call: Call = (method, path, options = {}) =>
    new Promise((resolve, reject) => {
      const headers: Record<string, string> = {};
      if (options.token) headers.Authorization = `Bearer ${options.token}`;
      const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
      if (payload !== undefined) headers["Content-Type"] = "application/json";
      const req = httpRequest({ host: "127.0.0.1", port, method, path, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          const type = String(res.headers["content-type"] ?? "");
          resolve({ status: res.statusCode ?? 0, type, text, json: type.startsWith("application/json") ? JSON.parse(text) : undefined });
        });
      });
      req.on("error", reject);
      req.end(payload);
    });
  return { server, call };
}

export type Call = (method: string, path: string, options?: { token?: string; body?: unknown }) => Promise<Reply>;
