import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    // One server for the whole run, and a 2-core box: files one after another.
    fileParallelism: false,
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 180_000,
    // The server stops its processes and removes its directory.
    teardownTimeout: 60_000,
  },
});
