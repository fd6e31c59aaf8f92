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

describe("signing", () => {
  it("matches the Standard Webhooks spec's example vector", async () => {
    expect(await sign([SPEC.secret], SPEC.id, SPEC.timestamp, SPEC.body)).toBe(SPEC.signature);
  });

  it("is verified by the standardwebhooks package, as a subscriber would", async () => {
    const now = Math.floor(Date.now() / 1000);
    const body = '{"channel":"c","messages":[{"data":"ünïcødé"}]}';
    const signature = await sign([SPEC.secret], "msg_1", now, body);
    const headers = {
      "webhook-id": "msg_1",
      "webhook-timestamp": String(now),
      "webhook-signature": signature,
    };
    expect(new Webhook(SPEC.secret).verify(body, headers)).toEqual(JSON.parse(body));
  });

  it("signs once per secret, space-separated, so either secret verifies during a rotation", async () => {
    const other = "whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldCBrZXkhIQ==";
    const now = Math.floor(Date.now() / 1000);
    const signature = await sign([other, SPEC.secret], "msg_2", now, "{}");
    expect(signature.split(" ")).toHaveLength(2);
    const headers = {
      "webhook-id": "msg_2",
      "webhook-timestamp": String(now),
      "webhook-signature": signature,
    };
    for (const secret of [other, SPEC.secret]) {
      expect(() => new Webhook(secret).verify("{}", headers)).not.toThrow();
    }
  });

  it("does not verify once one byte of the body changes", async () => {
    const now = Math.floor(Date.now() / 1000);
    const signature = await sign([SPEC.secret], "msg_3", now, '{"a":1}');
    const headers = {
      "webhook-id": "msg_3",
      "webhook-timestamp": String(now),
      "webhook-signature": signature,
    };
    expect(() => new Webhook(SPEC.secret).verify('{"a":2}', headers)).toThrow();
  });
});
