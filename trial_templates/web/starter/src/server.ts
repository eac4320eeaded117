import { createServer } from "node:http";
import { createApp } from "./app";
import { loadUsers } from "./auth";

// node build/src/server.js [--host 127.0.0.1] [--port 8080] [--users config/users.json]
function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 && at + 1 < process.argv.length ? process.argv[at + 1] : fallback;
}

if (require.main === module) {
  const host = option("host", "127.0.0.1");
  const port = Number(option("port", "8080"));
  const users = loadUsers(option("users", "config/users.json"));
  const server = createServer(createApp({ users }));
  server.listen(port, host, () => console.log(`notes board on http://${host}:${port}/teams/red`));
}
