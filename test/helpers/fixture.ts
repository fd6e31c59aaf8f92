// The usual shape of a delivery test file: one stack for the file, and for each test a fresh
// receiver and a channel name of its own, so tests do not see each other's messages.

import { afterAll, afterEach, beforeAll, beforeEach } from "vitest";
import { startReceiver, type TestReceiver } from "./receiver.ts";
import { type Stack, type StackOptions, startStack } from "./stack.ts";

export interface Fixture {
  stack: Stack;
  receiver: TestReceiver;
  channel: string;
}

/** Registers the hooks; `use` is handed the stack, receiver and channel before each test. */
export function deliveryFixture(prefix: string, options: StackOptions, use: (f: Fixture) => void) {
  let stack: Stack | undefined;
  let receiver: TestReceiver | undefined;
  let counter = 0;
  beforeAll(async () => {
    stack = await startStack(options);
  });
  afterAll(() => stack?.stop());
  beforeEach(async () => {
    receiver = await startReceiver();
    use({ stack: stack!, receiver, channel: `${prefix}-${++counter}` });
  });
  afterEach(() => receiver?.close());
}
