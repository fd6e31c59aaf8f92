// The two receivers, driven over real HTTP with real Standard Webhooks signatures: the starter
// receiver people run (dev/receiver.ts) and the scripted one the tests use
// (test/helpers/receiver.ts). Each request is valid and correctly signed unless the test breaks
// one thing.

import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Webhook } from "standardwebhooks";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startReceiver as startDevReceiver } from "../../dev/receiver.ts";
import { startReceiver, type TestReceiver } from "../helpers/receiver.ts";

const SECRET = `whsec_${Buffer.from("streamhook-receiver-test-secret!").toString("base64")}`;
const OTHER_SECRET = `whsec_${Buffer.from("a-different-secret-for-rotation!").toString("base64")}`;
const RECEIVER_CLI = join(import.meta.dirname, "..", "..", "dev", "receiver.ts");

const batch = {
  channel: "orders",
  subscription: "billing",
  messages: [
    {
      id: "1712345678901-0",
      type: "order.created",
      data: { order: 42, total: 9.5 },
      publishedAt: "2024-04-05T19:34:38.901Z",
      attempt: 1,
    },
    {
      id: "1712345678901-1",
      type: null,
      data: "plain",
      publishedAt: "2024-04-05T19:34:38.901Z",
      attempt: 2,
    },
  ],
};
const ids = batch.messages.map((m) => m.id);

/** The headers streamhook sends for `payload`, signed with `secret`. */
function signedHeaders(payload: string, secret = SECRET, msgId = "batch-1") {
  const now = new Date();
  return {
    "content-type": "application/json",
    "webhook-id": msgId,
    "webhook-timestamp": String(Math.floor(now.getTime() / 1000)),
    "webhook-signature": new Webhook(secret).sign(msgId, now, payload),
  };
}

/** POSTs a batch as streamhook would; `headers` override the signed ones. */
function post(url: string, body: unknown = batch, headers: Record<string, string> = {}) {
  const payload = typeof body === "string" ? body : JSON.stringify(body);
  return fetch(url, {
    method: "POST",
    body: payload,
    headers: { ...signedHeaders(payload), ...headers },
  });
}

/** POSTs a batch that times out while the receiver holds the answer: fetch aborts, the socket closes. */
async function postAndTimeOut(url: string, timeoutMs: number) {
  const payload = JSON.stringify(batch);
  const timedOut = fetch(url, {
    method: "POST",
    body: payload,
    headers: signedHeaders(payload),
    signal: AbortSignal.timeout(timeoutMs),
  });
  await expect(timedOut).rejects.toThrow();
}

/**
 * POSTs a batch from a child process and SIGKILLs it once `receiver` has recorded the request:
 * the dead sender's kernel closes the connection (FIN), as for a Worker killed mid-delivery.
 */
async function postAndDie(receiver: TestReceiver) {
  const payload = JSON.stringify(batch);
  const init = { method: "POST", body: payload, headers: signedHeaders(payload) };
  const script = `fetch(${JSON.stringify(receiver.url)}, ${JSON.stringify(init)})`;
  const child = spawn(process.execPath, ["-e", script], { stdio: "ignore" });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  await receiver.waitFor((r) => r.requests.length === 1);
  child.kill("SIGKILL");
  await exited;
}

/** POSTs a batch on a connection of its own (no keep-alive); resolves once the connection is closed. */
function postAndHangUp(url: string): Promise<number> {
  const payload = JSON.stringify(batch);
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "POST", agent: false, headers: signedHeaders(payload) });
    req.once("response", (res) => {
      res.resume();
      req.socket?.once("close", () => resolve(res.statusCode ?? 0));
    });
    req.once("error", reject);
    req.end(payload);
  });
}

/** Runs the receiver CLI; resolves with its exit code and output once it exits. */
function runCli(args: string[]) {
  const child = spawn(process.execPath, [RECEIVER_CLI, ...args], { stdio: "pipe" });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.once("exit", (code) => resolve({ code, stdout, stderr })),
  );
  return { child, exited, stdout: () => stdout };
}

describe("dev/receiver.ts", () => {
  let dir: string;
  let out: string;
  let lines: string[];
  let receiver: { url: string; close(): Promise<void> };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "streamhook-receiver-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    out = join(dir, `${crypto.randomUUID()}.jsonl`);
    lines = [];
    receiver = await startDevReceiver({
      secret: SECRET,
      port: 0,
      out,
      log: (line) => lines.push(line),
    });
  });
  afterEach(async () => {
    await receiver.close();
  });

  const outLines = async () =>
    (await readFile(out, "utf8").catch(() => "")).split("\n").filter((line) => line !== "");

  it("acks a correctly signed batch with 204", async () => {
    const res = await post(receiver.url);
    expect(res.status).toBe(204);
  });

  it("prints each message on one line: id, type, compact data, attempt", async () => {
    await post(receiver.url);
    expect(lines).toEqual([
      '1712345678901-0 order.created {"order":42,"total":9.5} attempt=1',
      '1712345678901-1 - "plain" attempt=2',
    ]);
  });

  it("appends each message to --out as one JSON line with its channel, subscription and receivedAt", async () => {
    const before = Date.now();
    await post(receiver.url);
    await post(receiver.url);
    const written = (await outLines()).map((line) => JSON.parse(line));
    expect(written).toHaveLength(4);
    expect(written[0]).toEqual({
      channel: "orders",
      subscription: "billing",
      ...batch.messages[0],
      receivedAt: expect.any(String),
    });
    expect(written[1]).toMatchObject({ id: ids[1], type: null, data: "plain", attempt: 2 });
    expect(Date.parse(written[0].receivedAt)).toBeGreaterThanOrEqual(before - 1000);
  });

  it("accepts a batch when any of several signatures matches, as while a secret rotates", async () => {
    const payload = JSON.stringify(batch);
    const oldSignature = signedHeaders(payload, OTHER_SECRET)["webhook-signature"];
    const signature = `${oldSignature} ${signedHeaders(payload)["webhook-signature"]}`;
    const res = await post(receiver.url, payload, { "webhook-signature": signature });
    expect(res.status).toBe(204);
  });

  it("rejects a signature made with another secret with 401, logs one line and writes nothing", async () => {
    const payload = JSON.stringify(batch);
    const res = await post(receiver.url, payload, signedHeaders(payload, OTHER_SECRET));
    expect(res.status).toBe(401);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^401 rejected batch-1: /);
    expect(await outLines()).toEqual([]);
  });

  it("rejects a body changed after signing with 401", async () => {
    const signed = signedHeaders(JSON.stringify(batch));
    const res = await post(receiver.url, { ...batch, channel: "refunds" }, signed);
    expect(res.status).toBe(401);
  });

  it("rejects a request without signature headers with 401", async () => {
    const res = await fetch(receiver.url, { method: "POST", body: JSON.stringify(batch) });
    expect(res.status).toBe(401);
  });

  it("answers 500 to every batch with --fail-rate 1, says so, and writes nothing", async () => {
    await receiver.close();
    receiver = await startDevReceiver({
      secret: SECRET,
      port: 0,
      out,
      failRate: 1,
      log: (line) => lines.push(line),
    });
    const res = await post(receiver.url);
    expect(res.status).toBe(500);
    expect(lines).toEqual([expect.stringMatching(/^500 failing batch batch-1 on purpose/)]);
    expect(await outLines()).toEqual([]);
  });
});

describe("dev/receiver.ts as a command", () => {
  it.each([
    ["no --secret", ["--port", "0"]],
    ["a port that is not a number", ["--secret", SECRET, "--port", "nine"]],
    ["a port above 65535", ["--secret", SECRET, "--port", "70000"]],
    ["a fail rate above 1", ["--secret", SECRET, "--fail-rate", "1.5"]],
    ["a negative fail rate", ["--secret", SECRET, "--fail-rate", "-0.1"]],
    ["a secret that is not base64", ["--secret", "whsec_%%%"]],
    ["an unknown option", ["--secret", SECRET, "--verbose"]],
  ])("prints usage and exits 2 on %s", async (_case, args) => {
    const { code, stderr } = await runCli(args).exited;
    expect(code).toBe(2);
    expect(stderr).toContain("usage: npm run receiver");
  });

  it("prints its URL on start and exits 0 on SIGTERM", async () => {
    const cli = runCli(["--secret", SECRET, "--port", "0"]);
    const deadline = Date.now() + 10_000;
    while (!cli.stdout().includes("listening on") && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const url = cli.stdout().match(/http:\/\/127\.0\.0\.1:\d+\//)?.[0];
    expect(url).toBeDefined();
    expect((await post(url!)).status).toBe(204);
    cli.child.kill("SIGTERM");
    expect((await cli.exited).code).toBe(0);
  });
});

describe("test/helpers/receiver.ts", () => {
  let receiver: TestReceiver;

  beforeEach(async () => {
    receiver = await startReceiver({ secret: SECRET });
  });
  afterEach(async () => {
    await receiver.close();
  });

  describe("recording", () => {
    it("records each request's raw body, parsed body, lowercased headers, time and 1-based index", async () => {
      const before = Date.now();
      const payload = JSON.stringify(batch);
      await post(receiver.url, payload, { "X-Custom": "yes" });
      await post(receiver.url, payload);
      expect(receiver.requests).toHaveLength(2);
      const [first, second] = receiver.requests;
      expect(first).toMatchObject({
        raw: payload,
        body: batch,
        n: 1,
        method: "POST",
        path: "/hook",
      });
      expect(first!.headers["x-custom"]).toBe("yes");
      expect(first!.headers["webhook-id"]).toBe("batch-1");
      expect(first!.at).toBeGreaterThanOrEqual(before);
      expect(second!.n).toBe(2);
    });

    it("records a body that is not JSON with body null", async () => {
      await post(receiver.url, "not json");
      expect(receiver.requests[0]).toMatchObject({ raw: "not json", body: null });
    });

    it("flattens every message in arrival order, duplicates kept", async () => {
      await post(receiver.url);
      await post(receiver.url);
      expect(receiver.messages().map((m) => m.id)).toEqual([...ids, ...ids]);
    });

    it("serves its own path, given as an option", async () => {
      const other = await startReceiver({ path: "/webhooks/in" });
      try {
        expect(other.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/webhooks\/in$/);
        expect((await post(other.url)).status).toBe(204);
      } finally {
        await other.close();
      }
    });
  });

  describe("verification", () => {
    it("marks a request signed with its secret as verified", async () => {
      await post(receiver.url);
      expect(receiver.requests[0]!.verified).toBe(true);
    });

    it("marks a request signed with another secret as not verified", async () => {
      const payload = JSON.stringify(batch);
      await post(receiver.url, payload, signedHeaders(payload, OTHER_SECRET));
      expect(receiver.requests[0]!.verified).toBe(false);
    });

    it("verifies with the secret set at the time the request arrives", async () => {
      receiver.setSecret(OTHER_SECRET);
      const payload = JSON.stringify(batch);
      await post(receiver.url, payload, signedHeaders(payload, OTHER_SECRET));
      expect(receiver.requests[0]!.verified).toBe(true);
    });

    it("marks every request as not verified when it has no secret", async () => {
      receiver.setSecret(null);
      await post(receiver.url);
      expect(receiver.requests[0]!.verified).toBe(false);
    });
  });

  describe("scripted replies", () => {
    it("answers 204 with no body by default", async () => {
      const res = await post(receiver.url);
      expect(res.status).toBe(204);
      expect(await res.text()).toBe("");
    });

    it("answers with the scripted status, headers and text body", async () => {
      receiver.respond({ status: 429, body: "slow down", headers: { "retry-after": "7" } });
      const res = await post(receiver.url);
      expect(res.status).toBe(429);
      expect(res.headers.get("retry-after")).toBe("7");
      expect(await res.text()).toBe("slow down");
    });

    it("sends an object body as JSON with content-type application/json", async () => {
      receiver.respond({ status: 200, body: { failed: [ids[0]] } });
      const res = await post(receiver.url);
      expect(res.headers.get("content-type")).toBe("application/json");
      expect(await res.json()).toEqual({ failed: [ids[0]] });
    });

    it("asks a scripting function per request, with the recorded request", async () => {
      receiver.respond(async (req) => ({ status: req.n === 1 ? 503 : 204 }));
      expect((await post(receiver.url)).status).toBe(503);
      expect((await post(receiver.url)).status).toBe(204);
    });

    it("records the status and parsed body it sent on the request", async () => {
      receiver.respond({ status: 200, body: { failed: [ids[1]] } });
      await post(receiver.url);
      expect(receiver.requests[0]).toMatchObject({ status: 200, replyBody: { failed: [ids[1]] } });
    });

    it("drops the connection on 'drop', so the sender's fetch rejects", async () => {
      receiver.respond("drop");
      await expect(post(receiver.url)).rejects.toThrow();
      expect(receiver.requests).toHaveLength(1);
      expect(receiver.requests[0]!.status).toBeUndefined();
    });

    it("holds the answer for delayMs", async () => {
      receiver.respond({ status: 204, delayMs: 300 });
      const started = Date.now();
      await post(receiver.url);
      expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    });

    it("records the held answer as never read when the sender times out before it goes out", async () => {
      receiver.respond({ status: 204, delayMs: 500 });
      await postAndTimeOut(receiver.url, 100);
      await receiver.waitFor((r) => r.requests[0]?.status !== undefined);
      expect(receiver.requests[0]).toMatchObject({ status: 204, senderGone: true });
      expect(receiver.acceptedIds()).toEqual([]);
    });

    it("closes at once, even while an answer is held", async () => {
      receiver.respond({ status: 204, delayMs: 60_000 });
      const pending = post(receiver.url).catch((error: unknown) => error);
      await receiver.waitFor((r) => r.requests.length === 1);
      const started = Date.now();
      await receiver.close();
      expect(Date.now() - started).toBeLessThan(1000);
      expect(await pending).toBeInstanceOf(Error);
    });

    it("records no answer and no hang-up for a held reply that close() cuts", async () => {
      receiver.respond({ status: 204, delayMs: 60_000 });
      const pending = post(receiver.url).catch((error: unknown) => error);
      await receiver.waitFor((r) => r.requests.length === 1);
      await receiver.close();
      await pending;
      expect(receiver.requests[0]!.status).toBeUndefined();
      expect(receiver.requests[0]!.senderGone).toBe(false);
    });
  });

  describe("acceptedIds", () => {
    it("accepts every message of a batch answered 2xx", async () => {
      await post(receiver.url);
      expect(receiver.acceptedIds()).toEqual(ids);
    });

    it("accepts all but the ids listed in a {failed} reply", async () => {
      receiver.respond({ status: 200, body: { failed: [ids[0]] } });
      await post(receiver.url);
      expect(receiver.acceptedIds()).toEqual([ids[1]]);
    });

    it("accepts nothing from a batch answered with a non-2xx status", async () => {
      receiver.respond({ status: 500, body: { failed: [] } });
      await post(receiver.url);
      expect(receiver.acceptedIds()).toEqual([]);
    });

    it("accepts a held 2xx answer once the sender that waited for it has it", async () => {
      receiver.respond({ status: 204, delayMs: 200 });
      await post(receiver.url);
      expect(receiver.acceptedIds()).toEqual(ids);
    });

    it("does not accept a held 2xx answer whose sender was killed before it went out", async () => {
      receiver.respond({ status: 204, delayMs: 500 });
      await postAndDie(receiver);
      await receiver.waitFor((r) => r.requests[0]!.status !== undefined);
      expect(receiver.requests[0]).toMatchObject({ status: 204, senderGone: true });
      expect(receiver.acceptedIds()).toEqual([]);
    });

    it("marks the sender gone as soon as it hangs up, while the answer is still held", async () => {
      receiver.respond({ status: 204, delayMs: 60_000 });
      await postAndDie(receiver);
      await receiver.waitFor((r) => r.requests[0]!.senderGone, 1000);
      expect(receiver.requests[0]!.status).toBeUndefined();
    });

    it("keeps accepting an answer the sender read after the sender hangs up", async () => {
      receiver.respond({ status: 204, delayMs: 100 });
      expect(await postAndHangUp(receiver.url)).toBe(204);
      // The receiver's end of the connection closes a moment after the sender's.
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(receiver.requests[0]!.senderGone).toBe(false);
      expect(receiver.acceptedIds()).toEqual(ids);
    });
  });

  describe("answeredIds", () => {
    it("counts a 2xx answer whether or not the sender was there to read it", async () => {
      receiver.respond({ status: 204, delayMs: 500 });
      await postAndDie(receiver);
      await post(receiver.url);
      await receiver.waitFor((r) => r.requests.every((req) => req.status !== undefined));
      expect(receiver.answeredIds()).toEqual([...ids, ...ids]);
      expect(receiver.acceptedIds()).toEqual(ids);
    });

    it("leaves out the ids listed in a {failed} reply", async () => {
      receiver.respond({ status: 200, body: { failed: [ids[1]] } });
      await post(receiver.url);
      expect(receiver.answeredIds()).toEqual([ids[0]]);
    });
  });

  describe("waitFor", () => {
    it("resolves once the predicate holds", async () => {
      setTimeout(() => void post(receiver.url), 50);
      await receiver.waitFor((r) => r.acceptedIds().length === 2);
      expect(receiver.acceptedIds()).toEqual(ids);
    });

    it("rejects after timeoutMs with what was received so far", async () => {
      receiver.respond({ status: 503 });
      await post(receiver.url);
      const waiting = receiver.waitFor((r) => r.acceptedIds().length > 0, 100);
      await expect(waiting).rejects.toThrow(/not true after 100 ms/);
      await expect(waiting).rejects.toThrow(/#1 POST \/hook -> 503: 1712345678901-0@1/);
    });

    it("says which answers the sender never read", async () => {
      receiver.respond({ status: 204, delayMs: 200 });
      await postAndTimeOut(receiver.url, 50);
      await receiver.waitFor((r) => r.requests[0]?.status !== undefined);
      const waiting = receiver.waitFor(() => false, 50);
      await expect(waiting).rejects.toThrow(/#1 POST \/hook -> 204 \(sender gone\): /);
    });

    it("says so when nothing was received", async () => {
      await expect(receiver.waitFor(() => false, 50)).rejects.toThrow(/no requests received/);
    });
  });
});
