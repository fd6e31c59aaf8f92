import { describe, expect, it } from "vitest";
import type { WebhookTargetPolicy } from "../../shared/config.ts";
import { webhookTargetRefusal } from "../../shared/webhook-target.ts";

const PRODUCTION: WebhookTargetPolicy = { allowHttp: false, allowPrivate: false };
const refusal = (url: string, policy = PRODUCTION) => webhookTargetRefusal(url, policy);

describe("webhook targets in production (both switches off)", () => {
  it.each([
    "https://example.com/hook",
    "https://hooks.example.com:8443/a?b=c",
    "https://93.184.215.14/hook",
    "https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/hook",
    "https://[::ffff:93.184.215.14]/hook",
    "https://[64:ff9b::93.184.215.14]/hook",
    // A name is accepted whatever it resolves to: DNS is out of reach at validation.
    "https://127.0.0.1.nip.io/hook",
    "https://localhost.example.com/hook",
  ])("accepts %s", (url) => {
    expect(refusal(url)).toBeNull();
  });

  it("refuses http, saying which variable allows it", () => {
    expect(refusal("http://example.com/hook")).toBe(
      "webhook URLs must use https, not http; set ALLOW_HTTP_WEBHOOKS=1 to allow http",
    );
  });

  it("names the host and its range, and the variable that allows it", () => {
    expect(refusal("https://127.0.0.1/hook")).toBe(
      "the URL's host 127.0.0.1 is a loopback address; set ALLOW_PRIVATE_WEBHOOKS=1 to allow it",
    );
  });

  it.each([
    // IPv4 in every spelling the URL parser turns into 127.0.0.1
    ["https://2130706433/", "127.0.0.1 is a loopback address"],
    ["https://0x7f000001/", "127.0.0.1 is a loopback address"],
    ["https://127.1/", "127.0.0.1 is a loopback address"],
    ["https://0177.0.0.1/", "127.0.0.1 is a loopback address"],
    ["https://0x7f.1/", "127.0.0.1 is a loopback address"],
    ["https://127.0.0.1./", "127.0.0.1 is a loopback address"],
    ["https://%31%32%37.0.0.1/", "127.0.0.1 is a loopback address"],
    ["https://\uff11\uff12\uff17.\uff10.\uff10.\uff11/", "127.0.0.1 is a loopback address"],
    ["https://127.255.255.254/", "is a loopback address"],
    ["https://0.0.0.0/", "0.0.0.0 is an unspecified address"],
    ["https://0/", "0.0.0.0 is an unspecified address"],
    ["https://10.1.2.3/", "10.1.2.3 is a private (RFC 1918) address"],
    ["https://172.16.0.1/", "is a private (RFC 1918) address"],
    ["https://192.168.1.1/", "is a private (RFC 1918) address"],
    ["https://169.254.1.1/", "169.254.1.1 is a link-local address"],
    ["https://100.64.0.1/", "is a carrier-grade NAT address"],
    ["https://224.0.0.1/", "is a multicast address"],
    ["https://255.255.255.255/", "is a broadcast address"],
    ["https://240.0.0.1/", "is a reserved address"],
    // IPv6
    ["https://[::1]/", "[::1] is a loopback address"],
    ["https://[0:0:0:0:0:0:0:1]/", "[::1] is a loopback address"],
    ["https://[::]/", "[::] is an unspecified address"],
    ["https://[fe80::1]/", "is a link-local address"],
    ["https://[fc00::1]/", "is a unique-local address"],
    ["https://[fd12:3456::1]/", "is a unique-local address"],
    ["https://[ff02::1]/", "is a multicast address"],
    ["https://[::ffff:127.0.0.1]/", "[::ffff:7f00:1] is an IPv6 form of 127.0.0.1, a loopback"],
    ["https://[::ffff:7f00:1]/", "is an IPv6 form of 127.0.0.1, a loopback address"],
    ["https://[::ffff:10.0.0.1]/", "is an IPv6 form of 10.0.0.1, a private (RFC 1918) address"],
    ["https://[::127.0.0.1]/", "is an IPv6 form of 127.0.0.1, a loopback address"],
    ["https://[64:ff9b::127.0.0.1]/", "is an IPv6 form of 127.0.0.1, a loopback address"],
    ["https://[::ffff:169.254.169.254]/", "an IPv6 form of 169.254.169.254, a cloud metadata"],
    ["https://[2002:7f00:1::]/", "is a special-purpose address (6to4)"],
    ["https://[4000::1]/", "is not a global unicast address"],
    // Cloud metadata
    ["https://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address"],
    ["https://[fd00:ec2::254]/", "[fd00:ec2::254] is a cloud metadata address"],
    ["https://100.100.100.200/", "is a cloud metadata address"],
    ["https://metadata.google.internal/", "is a cloud metadata service's name"],
    ["https://METADATA.google.internal./", "is a cloud metadata service's name"],
    // localhost names
    ["https://localhost/", "localhost is a localhost name"],
    ["https://LOCALHOST:8443/", "localhost is a localhost name"],
    ["https://localhost./", "localhost. is a localhost name"],
    ["https://api.localhost/", "api.localhost is a localhost name"],
  ])("refuses %s: %s", (url, reason) => {
    expect(refusal(url)).toContain(reason);
    expect(refusal(url)).toContain("ALLOW_PRIVATE_WEBHOOKS=1");
  });

  it("checks the scheme before the host", () => {
    expect(refusal("http://127.0.0.1/")).toContain("ALLOW_HTTP_WEBHOOKS=1");
  });
});

describe("webhook targets with the switches on", () => {
  it("accepts http with ALLOW_HTTP_WEBHOOKS, still refusing private hosts", () => {
    const policy = { allowHttp: true, allowPrivate: false };
    expect(refusal("http://example.com/hook", policy)).toBeNull();
    expect(refusal("http://127.0.0.1/hook", policy)).toContain("loopback");
  });

  it("accepts private hosts with ALLOW_PRIVATE_WEBHOOKS, still refusing http", () => {
    const policy = { allowHttp: false, allowPrivate: true };
    expect(refusal("https://127.0.0.1/hook", policy)).toBeNull();
    expect(refusal("https://169.254.169.254/hook", policy)).toBeNull();
    expect(refusal("http://127.0.0.1/hook", policy)).toContain("https");
  });

  it("accepts everything with both on, as `npm run dev` and the tests do", () => {
    const policy = { allowHttp: true, allowPrivate: true };
    expect(refusal("http://localhost:3000/hook", policy)).toBeNull();
    expect(refusal("http://[::1]:3000/hook", policy)).toBeNull();
  });
});
