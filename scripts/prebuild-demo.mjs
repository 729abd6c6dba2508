// After prebuildify: put the static binaries built with the addon next to the prebuilt one, so
// that an install from a prebuild (no compiler, no build/) still has what `scratchbox demo` runs
// (scratch-sleep) and what init: true runs as PID 1 (scratch-init).
import { copyFileSync, mkdirSync } from 'node:fs';

const root = new URL('../', import.meta.url);
const dir = new URL(`prebuilds/linux-${process.arch}/`, root);
mkdirSync(dir, { recursive: true });
for (const bin of ['scratch-sleep', 'scratch-init']) {
  copyFileSync(new URL(`build/Release/${bin}`, root), new URL(bin, dir));
  console.log(`copied build/Release/${bin} to prebuilds/linux-${process.arch}/`);
}
