// REPLACE: the starter codebase the candidate gets.
export interface Reply {
  status: number;
  contentType: string;
  body: string;
}

export function handle(path: string, query: URLSearchParams): Reply {
  if (path === "/health") {
    return { status: 200, contentType: "text/plain", body: "ok" };
  }
  if (path === "/greet") {
    const name = query.get("name") || "world";
    return { status: 200, contentType: "text/html; charset=utf-8", body: `<p>Hello, ${name}!</p>` };
  }
  return { status: 404, contentType: "application/json", body: '{"error": "not found"}' };
}
