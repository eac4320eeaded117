import { createServer } from "node:http";
import { handle } from "./routes";

const at = process.argv.indexOf("--port");
const port = at >= 0 ? Number(process.argv[at + 1]) : 8080;

createServer((req, res) => {
  const url = new URL(req.url || "/", "http://localhost");
  const reply = handle(url.pathname, url.searchParams);
  res.writeHead(reply.status, { "Content-Type": reply.contentType });
  res.end(reply.body);
}).listen(port, "0.0.0.0");
