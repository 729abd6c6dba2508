/**
 * `scratchbox image import|pull|ls|rm|export|gc`: the image store from the shell. Returns the exit
 * code: 0, 1 for a failure (the ContainerError's message and code on stderr), 2 for bad usage.
 * A progress bar (cli-progress) is drawn on a TTY only; elsewhere one line per finished layer.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ContainerError } from '../errors.js';
import type { ExportFormat, ImageProgress } from '../image/index.js';

export const IMAGE_USAGE = `usage: scratchbox image <command> [options]

commands:
  import <path> [--ref NAME:TAG]       import a docker save archive, an OCI archive or an OCI layout dir
  pull <ref> [--insecure] [--username U --password-stdin] [--platform OS/ARCH]
                                       pull from an OCI registry (--insecure: plain http)
  ls [--json]                          list the images in the store
  rm <ref|digest>...                   remove refs (gc frees what no ref uses)
  export <ref> <path> [--format docker-archive|oci-archive|oci-dir]
                                       write an image out (default docker-archive)
  gc                                   remove blobs and layers no ref uses

options for every command:
  --store DIR                          the store (default $XDG_CACHE_HOME/scratchbox or ~/.cache/scratchbox)
  -h, --help                           this text
`;

const COMMON = { store: { type: 'string' }, help: { type: 'boolean', short: 'h' } } as const;
const OPTIONS: Record<string, ParseArgsConfig['options']> = {
  import: { ...COMMON, ref: { type: 'string' } },
  pull: { ...COMMON, insecure: { type: 'boolean' }, username: { type: 'string' }, 'password-stdin': { type: 'boolean' }, platform: { type: 'string' } },
  ls: { ...COMMON, json: { type: 'boolean' } },
  rm: { ...COMMON },
  export: { ...COMMON, format: { type: 'string' } },
  gc: { ...COMMON },
};
const ARITY: Record<string, [number, number]> = { import: [1, 1], pull: [1, 1], ls: [0, 0], rm: [1, Infinity], export: [2, 2], gc: [0, 0] };

function usage(err: string | undefined): number {
  if (err) process.stderr.write(`scratchbox image: ${err}\n${IMAGE_USAGE}`);
  else process.stdout.write(IMAGE_USAGE);
  return err ? 2 : 0;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString().replace(/\r?\n$/, '');
}

const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

/** Progress on stderr: one bar for the bytes of all layers on a TTY, a line per layer elsewhere. */
async function progressReporter(): Promise<{ onProgress: (e: ImageProgress) => void; stop: () => void }> {
  if (!process.stderr.isTTY) {
    const cached = new Set<string>();
    return {
      onProgress: (e) => {
        if (e.type === 'layer' && e.cached) cached.add(`${e.phase} ${e.digest}`);
        if (e.type === 'layer-done')
          process.stderr.write(`${e.phase} layer ${e.index + 1}/${e.count} ${e.digest.slice(0, 19)} ${mib(e.size)}${cached.has(`${e.phase} ${e.digest}`) ? ' (had it)' : ''}\n`);
      },
      stop: () => {},
    };
  }
  const { SingleBar, Presets } = await import('cli-progress');
  const bar = new SingleBar({ format: '{phase} |{bar}| {percentage}% {value}/{total} bytes, layer {layer}', stream: process.stderr, hideCursor: true }, Presets.shades_classic);
  const sizes = new Map<string, number>();
  const done = new Map<string, number>();
  let phase = '';
  let started = false;
  return {
    onProgress: (e) => {
      if (e.type === 'archive') {
        if (!started) bar.start(e.size, 0, { phase: 'read', layer: '-' });
        started = true;
        bar.update(e.bytes);
        return;
      }
      if (e.type === 'done') return;
      if (e.phase !== phase) {
        phase = e.phase;
        done.clear();
        if (started) bar.stop();
        bar.start(1, 0, { phase, layer: '' });
        started = true;
      }
      sizes.set(e.digest, e.size);
      if (e.type === 'bytes') done.set(e.digest, e.bytes);
      if (e.type === 'layer-done') done.set(e.digest, e.size);
      bar.setTotal([...sizes.values()].reduce((a, b) => a + b, 0));
      bar.update([...done.values()].reduce((a, b) => a + b, 0), { phase, layer: `${e.index + 1}/${e.count}` });
    },
    stop: () => started && bar.stop(),
  };
}

export async function imageCommand(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === 'help' || cmd === '--help' || cmd === '-h') return usage(cmd === undefined ? 'no command given' : undefined);
  const options = OPTIONS[cmd];
  if (!options) return usage(`unknown command '${cmd}'`);
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: rest, options, allowPositionals: true, strict: true }) as { values: Record<string, string | boolean | undefined>; positionals: string[] });
  } catch (e) {
    return usage((e as Error).message);
  }
  if (values.help) return usage(undefined);
  const [min, max] = ARITY[cmd]!;
  if (positionals.length < min || positionals.length > max) return usage(`'${cmd}' takes ${min === max ? min : `${min} or more`} argument${max === 1 ? '' : 's'}`);
  if (cmd === 'pull' && values['password-stdin'] && values.username === undefined) return usage('--password-stdin needs --username');
  if (cmd === 'pull' && typeof values.platform === 'string' && !/^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/.test(values.platform)) return usage(`--platform ${values.platform}: expected OS/ARCH[/VARIANT]`);

  const { ImageStore } = await import('../image/index.js');
  const progress = cmd === 'import' || cmd === 'pull' ? await progressReporter() : undefined;
  try {
    const store = await ImageStore.open(values.store as string | undefined);
    switch (cmd) {
      case 'import': {
        const img = await store.import(positionals[0]!, { onProgress: progress!.onProgress, ...(values.ref ? { ref: values.ref as string } : {}) });
        progress!.stop();
        process.stdout.write(`${img.ref ?? '(no ref)'} ${img.digest}\n`);
        return 0;
      }
      case 'pull': {
        const password = values['password-stdin'] ? await readStdin() : undefined;
        const [os, architecture, variant] = ((values.platform as string | undefined) ?? '').split('/');
        const img = await store.pull(positionals[0]!, {
          onProgress: progress!.onProgress,
          ...(values.insecure ? { insecure: true } : {}),
          ...(values.username !== undefined ? { auth: { username: values.username as string, password: password ?? '' } } : {}),
          ...(os && architecture ? { platform: { os, architecture, ...(variant ? { variant } : {}) } } : {}),
        });
        progress!.stop();
        process.stdout.write(`${img.ref ?? '(no ref)'} ${img.digest}\n`);
        return 0;
      }
      case 'ls': {
        const images = await store.list();
        if (values.json) {
          const rows = images.map((i) => ({ ref: i.ref, digest: i.digest, layers: i.layers.length, size: i.layers.reduce((a, l) => a + l.size, 0), config: i.config }));
          process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
          return 0;
        }
        const rows = [['REF', 'DIGEST', 'LAYERS', 'SIZE'], ...images.map((i) => [i.ref ?? '', i.digest.slice(0, 19), String(i.layers.length), mib(i.layers.reduce((a, l) => a + l.size, 0))])];
        const w = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
        for (const r of rows) process.stdout.write(`${r.map((v, c) => v.padEnd(w[c]!)).join('  ').trimEnd()}\n`);
        return 0;
      }
      case 'rm':
        for (const ref of positionals) {
          await store.remove(ref);
          process.stdout.write(`removed ${ref}\n`);
        }
        return 0;
      case 'export': {
        const format = (values.format as ExportFormat | undefined) ?? 'docker-archive';
        await (await store.get(positionals[0]!)).export(positionals[1]!, { format });
        process.stdout.write(`wrote ${positionals[1]} (${format})\n`);
        return 0;
      }
      case 'gc': {
        const r = await store.gc();
        process.stdout.write(`removed ${r.blobs} blobs (${mib(r.bytes)}) and ${r.layers} layer directories\n`);
        return 0;
      }
    }
    return usage(`unknown command '${cmd}'`);
  } catch (e) {
    progress?.stop();
    if (e instanceof ContainerError) {
      process.stderr.write(`scratchbox image ${cmd}: ${e.message} (code ${e.code})\n`);
      return 1;
    }
    throw e;
  }
}
