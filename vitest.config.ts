import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Each file in its own process, on that process's main thread: the addon clones from the
    // calling thread, and a container's parent-death signal follows that thread.
    pool: 'forks',
    globalSetup: ['test/setup/global.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
