import { describe, expect, it } from "vitest";
import { CONNECTIONS, Meter, POST_SLOTS, SubrequestLimit, unmetered } from "../../shared/meter.ts";

/** A subrequest that runs until the test ends it by hand. */
function request() {
  let end!: (value: string) => void;
  let fail!: (error: Error) => void;
  let started = false;
  const send = () => {
    started = true;
    return new Promise<string>((resolve, reject) => {
      end = resolve;
      fail = reject;
    });
  };
  return {
    send,
    get started() {
      return started;
    },
    end: (value = "ok") => end(value),
    fail: (error: Error) => fail(error),
  };
}

/** Lets every promise that can move on do so (no time passes). */
const settled = () => new Promise((resolve) => setImmediate(resolve));

const meter = (limit = 100, deadline = 1_000) => new Meter({ limit, deadline });

describe("an invocation's meter", () => {
  it("counts every subrequest, and answers with what it sent", async () => {
    const m = meter(10);
    expect(await m.subrequest(async () => "a")).toBe("a");
    await m.subrequest(async () => "b");
    m.count();
    expect(m.used).toBe(3);
    expect(m.left).toBe(7);
  });

  it("counts a subrequest that fails, and passes its error on", async () => {
    const m = meter(10);
    const boom = new Error("boom");
    await expect(m.subrequest(() => Promise.reject(boom))).rejects.toBe(boom);
    expect(m.used).toBe(1);
  });

  it("refuses a subrequest past its limit with SubrequestLimit, before sending anything", async () => {
    const m = meter(2);
    await m.subrequest(async () => 1);
    await m.subrequest(async () => 2);
    let sent = false;
    const third = m.subrequest(async () => {
      sent = true;
    });
    await expect(third).rejects.toBeInstanceOf(SubrequestLimit);
    expect(sent).toBe(false);
    expect(m.used).toBe(2);
  });

  it("refuses a counted subrequest (no connection) past its limit too", () => {
    const m = meter(1);
    m.count();
    expect(() => m.count()).toThrow(SubrequestLimit);
    expect(m.used).toBe(1);
  });

  it("never has more than six subrequests running at once; the others start in order", async () => {
    const m = meter();
    const requests = Array.from({ length: 9 }, request);
    const answers = requests.map((r) => m.subrequest(r.send));
    await settled();
    expect(CONNECTIONS).toBe(6);
    expect(requests.map((r) => r.started)).toEqual([...Array(6).fill(true), false, false, false]);
    // All nine are counted at once: the limit is checked before waiting for a connection.
    expect(m.used).toBe(9);

    requests[2]!.end();
    await settled();
    expect(requests.map((r) => r.started)).toEqual([...Array(7).fill(true), false, false]);

    // A failed subrequest gives its connection back too.
    requests[0]!.fail(new Error("lost"));
    await expect(answers[0]).rejects.toThrow("lost");
    await settled();
    expect(requests.map((r) => r.started)).toEqual([...Array(8).fill(true), false]);

    for (const r of requests.slice(1, 8)) r.end();
    await settled();
    expect(requests[8]!.started).toBe(true);
    requests[8]!.end();
    await Promise.all(answers.slice(1));
    expect(m.peakConnections).toBe(6);
  });

  it("allows work only before its deadline and within what is left", () => {
    const m = meter(10, 1_000);
    expect(m.allows(999, 10)).toBe(true);
    expect(m.allows(1_000, 1)).toBe(false);
    expect(m.allows(999, 11)).toBe(false);
    m.count();
    expect(m.allows(999, 10)).toBe(false);
    expect(m.allows(999, 9)).toBe(true);
  });

  it("keeps back what running work holds for its end, until it gives it back", () => {
    const m = meter(10);
    m.hold(3);
    expect(m.left).toBe(7);
    expect(m.allows(0, 8)).toBe(false);
    expect(m.allows(0, 7)).toBe(true);
    m.unhold(3);
    expect(m.left).toBe(10);
  });

  it("never gives back more than is held", () => {
    const m = meter(10);
    m.hold(1);
    m.unhold(5);
    expect(m.left).toBe(10);
    m.hold(2);
    expect(m.left).toBe(8);
  });
});

describe("the meter's webhook POST slots", () => {
  it("has six, one per connection", () => {
    expect(POST_SLOTS).toBe(6);
    expect(POST_SLOTS).toBe(CONNECTIONS);
    const m = meter();
    expect(m.posts.available).toBe(6);
    expect(m.posts.tryTake(8)).toBe(6);
    expect(m.posts.tryTake(1)).toBe(0);
    m.posts.give(2);
    expect(m.posts.available).toBe(2);
  });

  it("makes a seventh POST wait for a slot, and hands it the slot given back", async () => {
    const m = meter();
    for (let i = 0; i < 6; i++) await m.posts.take();
    let seventh = false;
    const waiting = m.posts.take().then(() => {
      seventh = true;
    });
    await settled();
    expect(seventh).toBe(false);
    m.posts.give();
    await waiting;
    expect(seventh).toBe(true);
    expect(m.posts.available).toBe(0);
  });
});

describe("an unmetered meter (tools outside an invocation)", () => {
  it("allows any work at any time", () => {
    const m = unmetered();
    expect(m.allows(Number.MAX_SAFE_INTEGER, 1_000_000)).toBe(true);
  });
});
