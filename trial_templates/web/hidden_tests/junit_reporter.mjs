// JUnit XML from Node's test runner. Bookworm's Node 18 has no built-in junit reporter (it
// came in Node 20.11), but takes a custom one: an async generator over the runner's events.
// A test becomes <testcase classname="hidden_tests.board.test.mjs" name="test_name">, so the
// template's id `hidden_tests/board.test.mjs::test_name` finds it. Nested tests are named
// `parent > child`. A file that fails to load is an <error> case named after the file.
import { relative } from "node:path";
import { fileURLToPath } from "node:url";

const escapeXml = (text) =>
  String(text)
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, "")
    .replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c]);

function classname(file) {
  if (!file) return "hidden_tests";
  const path = file.startsWith("file:") ? fileURLToPath(file) : file;
  return relative(process.cwd(), path).split(/[\\/]/).join(".");
}

export default async function* junit(source) {
  const cases = [];
  const open = []; // names of the tests running, by nesting level
  for await (const event of source) {
    const data = event.data ?? {};
    if (event.type === "test:start") {
      open[data.nesting] = data.name;
      open.length = data.nesting + 1;
    }
    if (event.type !== "test:pass" && event.type !== "test:fail") continue;
    const details = data.details ?? {};
    const isFile = data.nesting === 0 && data.file && !String(data.file).startsWith("file:") && data.name === data.file;
    const name = isFile ? "(load)" : [...open.slice(0, data.nesting), data.name].join(" > ");
    const seconds = ((details.duration_ms ?? 0) / 1000).toFixed(3);
    let body = "";
    if (event.type === "test:fail") {
      const error = details.error ?? {};
      const cause = error.cause ?? error;
      const message = cause.message ?? String(cause);
      const tag = isFile ? "error" : "failure";
      body = `<${tag} message="${escapeXml(message.split("\n")[0])}">${escapeXml(cause.stack ?? message)}</${tag}>`;
    } else if (data.skip !== undefined || data.todo !== undefined) {
      body = "<skipped/>";
    }
    cases.push(`  <testcase classname="${escapeXml(classname(data.file))}" name="${escapeXml(name)}" time="${seconds}">${body}</testcase>`);
  }
  const failures = cases.filter((c) => c.includes("<failure")).length;
  const errors = cases.filter((c) => c.includes("<error")).length;
  yield `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n<testsuite name="node --test" tests="${cases.length}" failures="${failures}" errors="${errors}">\n${cases.join("\n")}\n</testsuite>\n</testsuites>\n`;
}
