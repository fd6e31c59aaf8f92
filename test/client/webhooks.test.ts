// verifyWebhook and respond (@streamhook/client, receiver side) with fixed vectors, each case
// breaking one thing, and every verdict checked against the `standardwebhooks` package's.

import { respond, verifyWebhook, WebhookVerificationError } from "@streamhook/client/webhooks";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { sign } from "../../shared/signing.ts";

// The Standard Webhooks spec's own example: secret, id, timestamp, body and signature.
const SPEC = {
  secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
  id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
};
const OTHER = "whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldCBrZXkhIQ==";
const BODY =
  '{"channel":"orders","subscription":"billing","messages":[{"id":"1-0","type":"order.created",' +
  '"data":{"note":"ünïcødé ✓"},"publishedAt":"2026-11-24T07:08:44.089Z","attempt":1}]}';

interface Delivery {
  secrets: string[];
  headers: Record<string, string>;
  body: string;
}

/** A request as streamhook sends it now, signed with `signers` (shared/signing.ts). */
async function delivery(signers = [SPEC.secret], at = Date.now()): Promise<Delivery> {
  const timestamp = Math.floor(at / 1000);
  return {
    secrets: [SPEC.secret],
    headers: {
      "webhook-id": "msg_1",
      "webhook-timestamp": String(timestamp),
      "webhook-signature": await sign(signers, "msg_1", timestamp, BODY),
    },
    body: BODY,
  };
}

const ours = (d: Delivery) =>
  verifyWebhook(d.secrets, d.headers, d.body).then(
    () => true,
    (error: unknown) => {
      expect(error).toBeInstanceOf(WebhookVerificationError);
      return false;
    },
  );

/** The standardwebhooks package's verdict: one secret per Webhook, so any of them passing. */
const theirs = (d: Delivery) =>
  d.secrets.some((secret) => {
    try {
      new Webhook(secret).verify(d.body, d.headers);
      return true;
    } catch {
      return false;
    }
  });

const minutes = (n: number) => n * 60_000;

describe("verifyWebhook", () => {
  it("accepts the Standard Webhooks spec's example vector", async () => {
    const headers = {
      "webhook-id": SPEC.id,
      "webhook-timestamp": String(SPEC.timestamp),
      "webhook-signature": SPEC.signature,
    };
    const verified = await verifyWebhook(SPEC.secret, headers, SPEC.body, {
      now: SPEC.timestamp * 1000,
    });
    expect(verified).toEqual(JSON.parse(SPEC.body));
  });

  it("returns the batch, parsed, from a genuine request", async () => {
    const d = await delivery();
    expect(await verifyWebhook(d.secrets, d.headers, d.body)).toEqual(JSON.parse(BODY));
  });

  it.each<{
    case: string;
    verdict: "accepted" | "refused";
    change: (d: Delivery) => Delivery | Promise<Delivery>;
  }>([
    { case: "a genuine request", verdict: "accepted", change: (d) => d },
    {
      case: "one byte of the body changed",
      verdict: "refused",
      change: (d) => ({ ...d, body: d.body.replace("ü", "u") }),
    },
    {
      case: "the body with a space added",
      verdict: "refused",
      change: (d) => ({ ...d, body: `${d.body} ` }),
    },
    { case: "another secret", verdict: "refused", change: (d) => ({ ...d, secrets: [OTHER] }) },
    {
      case: "the right secret among others",
      verdict: "accepted",
      change: (d) => ({ ...d, secrets: [OTHER, SPEC.secret] }),
    },
    {
      case: "the secret without whsec_",
      verdict: "accepted",
      change: (d) => ({ ...d, secrets: [SPEC.secret.slice(6)] }),
    },
    {
      case: "another webhook-id",
      verdict: "refused",
      change: (d) => ({ ...d, headers: { ...d.headers, "webhook-id": "msg_2" } }),
    },
    {
      case: "a later webhook-timestamp on the same signature",
      verdict: "refused",
      change: (d) => ({
        ...d,
        headers: {
          ...d.headers,
          "webhook-timestamp": String(Number(d.headers["webhook-timestamp"]) + 1),
        },
      }),
    },
    {
      case: "signed 4 min 58 s ago",
      verdict: "accepted",
      change: () => delivery([SPEC.secret], Date.now() - minutes(5) + 2000),
    },
    {
      case: "signed 5 min 2 s ago",
      verdict: "refused",
      change: () => delivery([SPEC.secret], Date.now() - minutes(5) - 2000),
    },
    {
      case: "signed 6 minutes ahead",
      verdict: "refused",
      change: () => delivery([SPEC.secret], Date.now() + minutes(6)),
    },
    {
      case: "signed by both secrets of a rotation",
      verdict: "accepted",
      change: () => delivery([OTHER, SPEC.secret]),
    },
    {
      case: "a garbage signature before the right one",
      verdict: "accepted",
      change: (d) => ({
        ...d,
        headers: { ...d.headers, "webhook-signature": `v1,AAAA ${d.headers["webhook-signature"]}` },
      }),
    },
    {
      case: "the right signature as another version",
      verdict: "refused",
      change: (d) => ({
        ...d,
        headers: {
          ...d.headers,
          "webhook-signature": d.headers["webhook-signature"]!.replace("v1,", "v2,"),
        },
      }),
    },
    {
      case: "the signature cut short",
      verdict: "refused",
      change: (d) => ({
        ...d,
        headers: {
          ...d.headers,
          "webhook-signature": d.headers["webhook-signature"]!.slice(0, -4),
        },
      }),
    },
    {
      case: "no webhook-signature",
      verdict: "refused",
      change: (d) => {
        const { "webhook-signature": _, ...headers } = d.headers;
        return { ...d, headers };
      },
    },
    {
      case: "a timestamp that is not a number",
      verdict: "refused",
      change: (d) => ({ ...d, headers: { ...d.headers, "webhook-timestamp": "soon" } }),
    },
  ])("$case: $verdict, as standardwebhooks says", async ({ verdict, change }) => {
    const d = await change(await delivery());
    expect(await ours(d)).toBe(verdict === "accepted");
    expect(theirs(d)).toBe(verdict === "accepted");
  });

  it("takes a Headers object and the body as bytes", async () => {
    const d = await delivery();
    const bytes = new TextEncoder().encode(d.body);
    const headers = new Headers(d.headers);
    expect(await verifyWebhook(d.secrets, headers, bytes)).toEqual(JSON.parse(BODY));
    expect(await verifyWebhook(d.secrets, headers, bytes.buffer)).toEqual(JSON.parse(BODY));
  });

  it("says why it refused", async () => {
    const d = await delivery([SPEC.secret], Date.now() - minutes(10));
    await expect(verifyWebhook(d.secrets, d.headers, d.body)).rejects.toThrow(
      "webhook-timestamp too old",
    );
    const fresh = await delivery();
    await expect(verifyWebhook([OTHER], fresh.headers, fresh.body)).rejects.toThrow(
      "no signature matches",
    );
  });

  it("finds the headers whatever their case in a plain object", async () => {
    const d = await delivery();
    const headers = Object.fromEntries(
      Object.entries(d.headers as Record<string, string>).map(([k, v]) => [
        k.replace(/(^|-)[a-z]/g, (m) => m.toUpperCase()),
        v,
      ]),
    );
    expect(Object.keys(headers)).toContain("Webhook-Signature");
    expect(await verifyWebhook(d.secrets, headers, d.body)).toEqual(JSON.parse(BODY));
  });

  it("refuses a tolerance or clock that is not a number, which would accept any timestamp", async () => {
    const d = await delivery([SPEC.secret], Date.now() - minutes(10));
    for (const options of [
      { toleranceSeconds: Number.NaN },
      { now: Number.NaN },
      { toleranceSeconds: -1 },
    ]) {
      await expect(verifyWebhook(d.secrets, d.headers, d.body, options)).rejects.toThrow(TypeError);
    }
  });

  it("refuses a secret that is not base64, as a mistake of the caller", async () => {
    const d = await delivery();
    await expect(verifyWebhook("whsec_not base64!", d.headers, d.body)).rejects.toThrow(TypeError);
  });

  it("verifies what the standardwebhooks package signs", async () => {
    const now = new Date();
    const signature = new Webhook(SPEC.secret).sign("msg_9", now, BODY);
    const headers = {
      "webhook-id": "msg_9",
      "webhook-timestamp": String(Math.floor(now.getTime() / 1000)),
      "webhook-signature": signature,
    };
    expect(await verifyWebhook(SPEC.secret, headers, BODY)).toEqual(JSON.parse(BODY));
  });
});

describe("respond", () => {
  it("accepts the whole batch with 204 and no body", async () => {
    const answer = respond();
    expect(answer.status).toBe(204);
    expect(await answer.text()).toBe("");
    expect(respond({ failed: [] }).status).toBe(204);
  });

  it('rejects some messages with 200 {"failed": [ids]}, given ids or messages', async () => {
    const answer = respond({ failed: ["1-0", { id: "2-0" }] });
    expect(answer.status).toBe(200);
    expect(answer.headers.get("content-type")).toMatch(/^application\/json/);
    expect(await answer.json()).toEqual({ failed: ["1-0", "2-0"] });
  });
});
