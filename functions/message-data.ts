// A message's data as a publish stores it: the JSON text, re-serialised once, and held to
// MAX_MESSAGE_BYTES. Every route that takes a message to publish (a publish, a schedule's
// message) checks it here, so the same data is refused the same way.

import { PayloadTooLarge } from "../shared/errors.ts";

const encoder = new TextEncoder();

/** The data as JSON text; 413 naming `field` when it is over `maxMessageBytes` as UTF-8. */
export function encodeData(data: unknown, field: string, maxMessageBytes: number): string {
  const text = JSON.stringify(data);
  const bytes = encoder.encode(text).byteLength;
  if (bytes > maxMessageBytes) {
    throw new PayloadTooLarge(
      `${field} is ${bytes} bytes as JSON; the limit is ${maxMessageBytes} (MAX_MESSAGE_BYTES)`,
    );
  }
  return text;
}
