// REPLACE: the starter codebase the candidate gets.
export interface Reply {
  status: number;
  contentType: string;
  body: string;
}

const ENTITIES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c]);
}

function integer(raw: string | null): number | null {
  return raw !== null && /^-?\d+$/.test(raw) ? Number(raw) : null;
}

export function handle(path: string, query: URLSearchParams): Reply {
  if (path === "/health") {
    return { status: 200, contentType: "text/plain", body: "ok" };
  }
  if (path === "/greet") {
    const name = query.get("name") || "world";
    return { status: 200, contentType: "text/html; charset=utf-8", body: `<p>Hello, ${escapeHtml(name)}!</p>` };
  }
  if (path === "/sum") {
    const a = integer(query.get("a"));
    const b = integer(query.get("b"));
    if (a === null || b === null) {
      return { status: 400, contentType: "application/json", body: JSON.stringify({ error: "a and b must be integers" }) };
    }
    return { status: 200, contentType: "application/json", body: JSON.stringify({ sum: a + b }) };
  }
  return { status: 404, contentType: "application/json", body: '{"error": "not found"}' };
}
