// The few Node APIs this code uses (Debian packages no @types/node; add what you need).
declare module "node:http" {
  interface IncomingMessage { url?: string; method?: string }
  interface ServerResponse {
    writeHead(status: number, headers?: Record<string, string>): void;
    end(body?: string): void;
  }
  interface Server { listen(port: number, host?: string, callback?: () => void): void }
  function createServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Server;
}
declare module "node:test" {
  function test(name: string, fn: () => void | Promise<void>): void;
  export = test;
}
declare module "node:assert/strict" {
  function ok(value: unknown, message?: string): void;
  function equal(actual: unknown, expected: unknown, message?: string): void;
  function deepEqual(actual: unknown, expected: unknown, message?: string): void;
  export { ok, equal, deepEqual };
}
declare const process: { argv: string[] };
