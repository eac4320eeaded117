import test = require("node:test");
import * as assert from "node:assert/strict";
import { handle } from "../src/routes";

test("health", () => {
  assert.equal(handle("/health", new URLSearchParams()).body, "ok");
});

test("greeting", () => {
  const reply = handle("/greet", new URLSearchParams("name=Ada"));
  assert.equal(reply.status, 200);
  assert.ok(reply.body.includes("Hello, Ada!"));
  assert.ok(handle("/greet", new URLSearchParams("name=<b>")).body.includes("&lt;b&gt;"));
});

test("sum", () => {
  assert.deepEqual(JSON.parse(handle("/sum", new URLSearchParams("a=2&b=40")).body), { sum: 42 });
  assert.equal(handle("/sum", new URLSearchParams("a=1.5&b=1")).status, 400);
});
