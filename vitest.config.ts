import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// The client package by its name, from its source (as tsconfig.json's `paths` do): tests run
// what is in client/, unbuilt. test/client/package.test.ts tests the build, packed and installed.
const client = (file: string) => fileURLToPath(new URL(`./client/${file}`, import.meta.url));

// Every test file starts its own throwaway redis-server, REST bridge and workerd, so files run in
// parallel processes; the Worker bundle is built once, in the global setup.
export default defineConfig({
  resolve: {
    alias: [
      { find: /^@streamhook\/client$/, replacement: client("index.ts") },
      { find: /^@streamhook\/client\/webhooks$/, replacement: client("webhooks.ts") },
    ],
  },
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    pool: "forks",
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
