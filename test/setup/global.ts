/**
 * Builds what the integration tests run inside containers: the probe (test/fixtures/probe.c,
 * static glibc) and the demo's libc-free sleep, into test/.build/; and seccomp-run
 * (test/fixtures/seccomp-run.c), which loads a filter and reports what syscalls return under it.
 * And cgroup-load (test/fixtures/cgroup-load.c), the cgroup tests' workloads (fork bomb, memory
 * hog, spinner, counter, daemon). Needs gcc and glibc's static libraries (present on this kind of
 * machine; .ci/run installs them on a fresh one). Also compiles dist/ again when it is older than
 * src-ts/.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
export const buildDir = `${root}test/.build`;

function newer(src: string, out: string): boolean {
  return !existsSync(out) || statSync(src).mtimeMs > statSync(out).mtimeMs;
}

/** The newest mtime of the files below dir. */
function newest(dir: string): number {
  return Math.max(...readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((f) => statSync(`${dir}/${f}`).mtimeMs));
}

export default function setup(): void {
  // Tests that start a second Node process (the CLI, stdio 'inherit', the README's examples) run
  // dist/, the compiled TypeScript: compile it again when src-ts/ has changed since.
  if (!existsSync(`${root}dist/index.js`) || newest(`${root}src-ts`) > statSync(`${root}dist/index.js`).mtimeMs)
    execFileSync(process.execPath, [`${root}node_modules/typescript/bin/tsc`, '-p', `${root}tsconfig.build.json`], { stdio: 'inherit' });
  mkdirSync(buildDir, { recursive: true });
  for (const name of ['probe', 'seccomp-run', 'cgroup-load']) {
    const src = `${root}test/fixtures/${name}.c`;
    if (newer(src, `${buildDir}/${name}`))
      execFileSync('gcc', ['-static', '-O2', '-o', `${buildDir}/${name}`, src], { stdio: 'inherit' });
  }
  const sleepBin = `${root}build/Release/scratch-sleep`;
  if (!existsSync(sleepBin)) throw new Error(`${sleepBin} is missing: run npm ci (it builds the addon and the demo binary)`);
  copyFileSync(sleepBin, `${buildDir}/sleep`);
}
