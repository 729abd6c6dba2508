/**
 * `scratchbox demo`: the article "Inside Docker's FROM scratch" as a program.
 */
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, type Stats } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { Container } from '../container/container.js';
import { ContainerError } from '../errors.js';
import { packageRoot } from '../native/addon.js';
import { usageError } from './main.js';

const USAGE = `usage: scratchbox demo

Builds a FROM-scratch image holding one static binary in a temporary directory, runs it as a
container, shows what the runtime added inside, and deletes it. Needs root.
`;

/** Colour only for a terminal, and never with NO_COLOR set to anything but '' (no-color.org). */
export function useColor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv): boolean {
  return stream.isTTY === true && (env.NO_COLOR === undefined || env.NO_COLOR === '');
}

function mode(st: Stats): string {
  const t = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isCharacterDevice() ? 'c' : '-';
  const bits = 'rwxrwxrwx'.split('').map((ch, i) => (st.mode & (1 << (8 - i)) ? ch : '-')).join('');
  return t + bits;
}

/** `ls -la`-like lines for a directory (its entries sorted, with link targets). */
function listing(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .map((name) => {
      const st = lstatSync(`${dir}/${name}`);
      const link = st.isSymbolicLink() ? ` -> ${readlinkSync(`${dir}/${name}`)}` : '';
      return `  ${mode(st)} ${String(st.uid).padStart(4)} ${String(st.gid).padStart(4)} ${String(st.size).padStart(8)}  ${name}${link}`;
    });
}

export async function demoCommand(argv: string[]): Promise<number> {
  let help: boolean | undefined;
  try {
    ({ help } = parseArgs({ args: argv, strict: true, allowPositionals: false, options: { help: { type: 'boolean', short: 'h' } } }).values);
  } catch (e) {
    return usageError((e as Error).message, USAGE);
  }
  if (help) return process.stdout.write(USAGE), 0;
  const bold = useColor(process.stdout, process.env);
  const title = (s: string) => console.log(bold ? `\n\x1b[1m${s}\x1b[0m` : `\n${s}`);
  if (process.getuid?.() !== 0) {
    console.error('scratchbox demo: needs root (new namespaces and mounts; rootless containers are not supported yet)');
    return 1;
  }
  // Built with the addon (build/Release), or shipped next to a prebuilt one (npm run prebuild).
  const candidates = [`${packageRoot}build/Release/scratch-sleep`, `${packageRoot}prebuilds/linux-${process.arch}/scratch-sleep`];
  const binary = candidates.find((p) => existsSync(p));
  if (!binary) {
    console.error(`scratchbox demo: the demo binary is missing (${candidates.join(', ')}); build the package first (npm ci, or npm run compile)`);
    return 1;
  }
  const work = mkdtempSync(`${tmpdir()}/scratchbox-demo-`);
  const rootfs = `${work}/rootfs`;
  try {
    // FROM scratch / COPY sleep / ENTRYPOINT ["/sleep"]
    mkdirSync(rootfs);
    copyFileSync(binary, `${rootfs}/sleep`);
    chmodSync(`${rootfs}/sleep`, 0o755);
    title(`The image: FROM scratch + one static binary (${rootfs})`);
    console.log(listing(rootfs).join('\n'));

    const options = { rootfs, args: ['/sleep'], hostname: 'scratch', stdio: ['ignore', 'pipe', 'inherit'] } as const;
    const t0 = performance.now();
    const c = await Container.create(options);
    const t1 = performance.now();
    // A second one, only to time it: the first create() of a process pays for its warm-up.
    const warm = await Container.create({ ...options, stdio: 'ignore' });
    const t2 = performance.now();
    await warm.delete();
    await c.start();
    const [hello] = (await once(c.stdout!, 'data')) as [Buffer];
    title(`The container ${c.id}: created in ${(t1 - t0).toFixed(1)} ms (a second one: ${(t2 - t1).toFixed(1)} ms), host pid ${c.pid}; it says:`);
    process.stdout.write(`  ${hello.toString()}`);
    console.log('  (the first create() of a process also loads the addon, makes its base mount namespace and starts its helper thread)');

    title(`The live root, seen from the host at /proc/${c.pid}/root`);
    console.log(listing(`/proc/${c.pid}/root`).join('\n'));
    console.log('  (everything but /sleep was added by the runtime, in the container\'s own mount namespace)');

    title('/etc inside the container');
    for (const f of ['hostname', 'hosts', 'resolv.conf']) {
      const text = readFileSync(`/proc/${c.pid}/root/etc/${f}`, 'utf8').trimEnd().split('\n');
      console.log(`  /etc/${f}:\n${text.map((l) => `      ${l}`).join('\n')}`);
    }
    console.log(`  /etc/mtab -> ${readlinkSync(`/proc/${c.pid}/root/etc/mtab`)}`);

    const info = await c.inspect();
    title('The mount table as seen inside (inspect().mounts, from /proc/PID/mountinfo)');
    const rows = info.mounts.map((m) => [m.mountPoint, m.fstype, m.source, m.options.join(',')]);
    const w = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
    for (const r of rows) console.log(`  ${r[0]!.padEnd(w[0]!)}  ${r[1]!.padEnd(w[1]!)}  ${r[2]!.padEnd(w[2]!)}  ${r[3]}`);

    title('Namespaces (container vs this process)');
    for (const [ns, id] of Object.entries(info.namespaces)) {
      const mine = readlinkSync(`/proc/self/ns/${ns}`);
      console.log(`  ${ns.padEnd(7)} ${id.padEnd(22)} ${id === mine ? 'shared with the host' : 'new'}`);
    }

    c.kill('SIGTERM');
    const exit = await c.wait();
    await c.delete();
    title(`Stopped: SIGTERM -> exit code ${exit.exitCode}; deleted. The image on disk is unchanged:`);
    console.log(listing(rootfs).join('\n'));
    return 0;
  } catch (e) {
    if (e instanceof ContainerError) console.error(`scratchbox demo: ${e.message} (code ${e.code}, stage ${e.stage})`);
    else console.error(e);
    return 1;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
