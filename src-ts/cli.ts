#!/usr/bin/env node
/** The scratchbox command (package.json "bin"): all of it is in cli/main.ts. */
import { main } from './cli/main.js';

// `scratchbox demo | head`: a reader that left is no reason to crash with a stack trace (and skip
// the demo's clean-up); what is left to print goes nowhere.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_DESTROYED') throw e;
});

process.exitCode = await main(process.argv.slice(2));
