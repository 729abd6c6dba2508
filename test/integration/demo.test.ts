import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { isRoot, repoRoot, ROOT_REASON } from './helpers.js';

const run = promisify(execFile);
const cli = `${repoRoot}dist/cli.js`;
const ESC = '\x1b[';
const SCRIPT = '/usr/bin/script'; // util-linux: runs a command on a pseudo-terminal

describe.skipIf(!isRoot)(`npm run demo (${ROOT_REASON})`, () => {
  it('piped: no ANSI codes; the first create() time, a warm one, and why they differ', async () => {
    const { stdout } = await run(process.execPath, [cli, 'demo'], { env: { ...process.env, NO_COLOR: undefined } });
    expect(stdout).not.toContain(ESC);
    expect(stdout).toMatch(/created in \d+\.\d ms \(a second one: \d+\.\d ms\)/);
    expect(stdout).toContain('the first create() of a process also loads the addon');
    expect(stdout).toContain('hello from scratch');
  });

  it.skipIf(!existsSync(SCRIPT))(`on a terminal: bold titles, unless NO_COLOR is set (needs ${SCRIPT}, package bsdutils)`, async () => {
    const onTty = (env: NodeJS.ProcessEnv) =>
      run(SCRIPT, ['-qec', `${JSON.stringify(process.execPath)} ${cli} demo`, '/dev/null'], { env: { ...process.env, ...env } });
    expect((await onTty({ NO_COLOR: '' })).stdout).toContain(`${ESC}1m`);
    expect((await onTty({ NO_COLOR: '1' })).stdout).not.toContain(ESC);
  });
});
