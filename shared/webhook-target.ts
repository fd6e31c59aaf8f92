// Which URLs a subscription may deliver to. In production a webhook is a public https endpoint:
// a URL that points the Worker at loopback, a private network, link-local space or a cloud
// metadata service would let anyone with an API key make it call those on their behalf (SSRF).
//
// The host is classified as the WHATWG URL parser leaves it, the same parser fetch uses, which
// already turns every IPv4 spelling (2130706433, 0x7f000001, 0177.0.0.1, 127.1, %31..., full-width
// digits) into dotted decimal and every IPv6 one into its compressed form. ipaddr.js then names
// the range; anything but ordinary unicast is refused. IPv6 forms that carry an IPv4 address
// (::ffff:a.b.c.d and the like) are judged by that address.
//
// Names other than localhost and the metadata services' are accepted: what a name resolves to is
// decided by DNS at delivery time, out of reach here (docs/operations.md: Webhook targets).

import ipaddr from "ipaddr.js";
import type { WebhookTargetPolicy } from "./config.ts";

// Cloud instance metadata endpoints: AWS (IMDS, IPv6 IMDS, ECS task metadata), GCP, Azure,
// Oracle, DigitalOcean (169.254.169.254), Alibaba (100.100.100.200), Azure's WireServer.
const METADATA_ADDRESSES = new Set([
  "169.254.169.254",
  "169.254.170.2",
  "fd00:ec2::254",
  "100.100.100.200",
  "168.63.129.16",
]);
const METADATA_NAMES = new Set([
  "metadata",
  "metadata.google.internal",
  "metadata.goog",
  "instance-data",
  "instance-data.ec2.internal",
]);

const RANGE_NAMES: Record<string, string> = {
  loopback: "a loopback address",
  private: "a private (RFC 1918) address",
  linkLocal: "a link-local address",
  uniqueLocal: "a unique-local address",
  unspecified: "an unspecified address",
  multicast: "a multicast address",
  broadcast: "a broadcast address",
  carrierGradeNat: "a carrier-grade NAT address",
  reserved: "a reserved address",
};

// IPv6 prefixes whose last 32 bits are an IPv4 address a host may end up connecting to.
const EMBEDS_IPV4: [ipaddr.IPv6, number][] = [
  ipaddr.IPv6.parseCIDR("::ffff:0:0/96"), // IPv4-mapped
  ipaddr.IPv6.parseCIDR("::ffff:0:0:0/96"), // IPv4-translated (RFC 6145)
  ipaddr.IPv6.parseCIDR("64:ff9b::/96"), // NAT64 (RFC 6052)
  ipaddr.IPv6.parseCIDR("::/96"), // IPv4-compatible (deprecated; :: and ::1 are caught first)
];
const GLOBAL_UNICAST = ipaddr.IPv6.parseCIDR("2000::/3");

/**
 * Why `url` may not be a webhook target under `policy`, as the message of a 400
 * url_not_allowed; null when it may. `url` has passed the schema (an http(s) URL).
 */
export function webhookTargetRefusal(url: string, policy: WebhookTargetPolicy): string | null {
  const parsed = new URL(url);
  if (parsed.protocol !== "https:" && !policy.allowHttp) {
    return `webhook URLs must use https, not ${parsed.protocol.slice(0, -1)}; set ALLOW_HTTP_WEBHOOKS=1 to allow http`;
  }
  if (policy.allowPrivate) return null;
  const host = parsed.hostname;
  const why = host.startsWith("[") ? ipv6Refusal(host.slice(1, -1)) : hostRefusal(host);
  if (why === null) return null;
  return `the URL's host ${host} is ${why}; set ALLOW_PRIVATE_WEBHOOKS=1 to allow it`;
}

function hostRefusal(host: string): string | null {
  if (ipaddr.IPv4.isValidFourPartDecimal(host)) return ipv4Refusal(ipaddr.IPv4.parse(host));
  const name = host.replace(/\.+$/, "");
  if (name === "localhost" || name.endsWith(".localhost")) return "a localhost name";
  if (METADATA_NAMES.has(name)) return "a cloud metadata service's name";
  return null;
}

function ipv4Refusal(address: ipaddr.IPv4): string | null {
  if (METADATA_ADDRESSES.has(address.toString())) return "a cloud metadata address";
  const range = address.range();
  return range === "unicast" ? null : describe(range);
}

function ipv6Refusal(literal: string): string | null {
  const address = ipaddr.IPv6.parse(literal);
  if (METADATA_ADDRESSES.has(address.toString())) return "a cloud metadata address";
  const range = address.range();
  if (range === "loopback" || range === "unspecified") return describe(range);
  if (EMBEDS_IPV4.some((cidr) => address.match(cidr))) {
    const bytes = address.toByteArray().slice(12);
    const ipv4 = new ipaddr.IPv4(bytes);
    const why = ipv4Refusal(ipv4);
    return why === null ? null : `an IPv6 form of ${ipv4.toString()}, ${why}`;
  }
  if (range !== "unicast") return describe(range);
  // Outside 2000::/3 nothing is allocated for the public internet.
  return address.match(GLOBAL_UNICAST) ? null : "not a global unicast address";
}

function describe(range: string): string {
  return RANGE_NAMES[range] ?? `a special-purpose address (${range})`;
}
