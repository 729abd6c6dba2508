// After prebuildify: put the demo's static binary next to the prebuilt addon, so that an install
// from a prebuild (no compiler, no build/) still has what `scratchbox demo` runs.
import { copyFileSync, mkdirSync } from 'node:fs';

const root = new URL('../', import.meta.url);
const dir = new URL(`prebuilds/linux-${process.arch}/`, root);
mkdirSync(dir, { recursive: true });
copyFileSync(new URL('build/Release/scratch-sleep', root), new URL('scratch-sleep', dir));
console.log(`copied build/Release/scratch-sleep to prebuilds/linux-${process.arch}/`);
