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
});
