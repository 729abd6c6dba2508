#!/usr/bin/env node
// Compiles scratchbox's default seccomp profile once, into dist/security/ beside the code that
// reads it back (src-ts/security/seccomp-cache.ts): a process's first create() then reads ~2 ms
// instead of compiling ~30. Run by `npm install`/`npm ci` (the install and prepare scripts) and
// `npm run compile`. Never fails them: without the file the first create() compiles, as before.
// --if-built: say nothing when dist/ is not built yet (the install script of a git checkout,
// which builds dist/ in its prepare script after).
import { existsSync } from 'node:fs';

const entry = new URL('../dist/security/seccomp.js', import.meta.url);
if (!existsSync(entry)) {
  if (!process.argv.includes('--if-built')) console.warn('scratchbox: dist/ is not built: the default seccomp filter is not precompiled');
  process.exit(0);
}
try {
  const { writeDefaultFilterCache } = await import(entry.href);
  console.log(`scratchbox: default seccomp filter precompiled: ${writeDefaultFilterCache()}`);
} catch (e) {
  console.warn(`scratchbox: the default seccomp filter is not precompiled (${e instanceof Error ? e.message : e}); each process compiles it at its first container`);
}
