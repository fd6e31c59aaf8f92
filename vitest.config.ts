import { defineConfig } from "vitest/config";

// Every test file starts its own throwaway redis-server, REST bridge and workerd, so files run in
// parallel processes; the Worker bundle is built once, in the global setup.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    pool: "forks",
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
