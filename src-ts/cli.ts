#!/usr/bin/env node
/**
 * The scratchbox command. For now one subcommand, `demo`: the article "Inside Docker's FROM
 * scratch" as a program. (The runc-compatible commands come with the CLI issue.)
 */
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, type Stats } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { Container } from './container/container.js';
import { ContainerError } from './errors.js';
import { packageRoot } from './native/addon.js';

const USAGE = `usage: scratchbox <command>

commands:
  demo     build a FROM-scratch image holding one static binary, run it, and look inside
  help     this text
`;

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

const title = (s: string) => console.log(`\n\x1b[1m${s}\x1b[0m`);

async function demo(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.error('scratchbox demo: needs root (new namespaces and mounts; rootless containers are not supported yet)');
    process.exitCode = 1;
    return;
  }
  // Built with the addon (build/Release), or shipped next to a prebuilt one (npm run prebuild).
  const candidates = [`${packageRoot}build/Release/scratch-sleep`, `${packageRoot}prebuilds/linux-${process.arch}/scratch-sleep`];
  const binary = candidates.find((p) => existsSync(p));
  if (!binary) {
    console.error(`scratchbox demo: the demo binary is missing (${candidates.join(', ')}); build the package first (npm ci, or npm run compile)`);
    process.exitCode = 1;
    return;
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

    const t0 = performance.now();
    const c = await Container.create({ rootfs, args: ['/sleep'], hostname: 'scratch', stdio: ['ignore', 'pipe', 'inherit'] });
    const created = performance.now();
    await c.start();
    const [hello] = (await once(c.stdout!, 'data')) as [Buffer];
    title(`The container ${c.id}: created in ${(created - t0).toFixed(1)} ms, host pid ${c.pid}; it says:`);
    process.stdout.write(`  ${hello.toString()}`);

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
  } catch (e) {
    if (e instanceof ContainerError) console.error(`scratchbox demo: ${e.message} (code ${e.code}, stage ${e.stage})`);
    else console.error(e);
    process.exitCode = 1;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { positionals } = parseArgs({ allowPositionals: true, strict: true, options: {} });
  const cmd = positionals[0] ?? 'help';
  if (cmd === 'demo') return demo();
  if (cmd === 'help') return void process.stdout.write(USAGE);
  process.stderr.write(`scratchbox: unknown command '${cmd}'\n${USAGE}`);
  process.exitCode = 2;
}

await main();
