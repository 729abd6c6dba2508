/**
 * The scratchbox command: global options, then a subcommand. Each subcommand is a module of its
 * own exporting `xxxCommand(argv): Promise<number>` (the exit code), imported only when it runs.
 */
import { readFileSync } from 'node:fs';
import { packageRoot } from '../native/addon.js';

export interface Command {
  summary: string;
  run(argv: string[]): Promise<number>;
}

/** The subcommands, in the order `--help` lists them. A new one is a line here and its module. */
export const COMMANDS: Readonly<Record<string, Command>> = {
  demo: {
    summary: 'build a FROM-scratch image holding one static binary, run it, and look inside',
    run: async (argv) => (await import('./demo.js')).demoCommand(argv),
  },
  image: {
    summary: 'the image store: import, pull, ls, rm, export, gc (scratchbox image --help)',
    run: async (argv) => (await import('./image.js')).imageCommand(argv),
  },
  help: { summary: 'this text', run: async () => (process.stdout.write(usage()), 0) },
};

export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const commands = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `usage: scratchbox [-h | --help] [-V | --version] <command> [<args>]

commands:
${commands.join('\n')}

options:
  -h, --help     this text
  -V, --version  the version of scratchbox
`;
}

export function version(): string {
  return (JSON.parse(readFileSync(`${packageRoot}package.json`, 'utf8')) as { version: string }).version;
}

/** A usage error: what was wrong, then the usage, on stderr; exit code 2. */
export function usageError(message: string, text = usage()): number {
  process.stderr.write(`scratchbox: ${message}\n\n${text}`);
  return 2;
}

/** Runs the command line (without node and the script); resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '-h' || first === '--help') return process.stdout.write(usage()), 0;
  if (first === '-V' || first === '--version') return process.stdout.write(`${version()}\n`), 0;
  if (first.startsWith('-')) return usageError(`unknown option '${first}'`);
  const command = Object.hasOwn(COMMANDS, first) ? COMMANDS[first] : undefined;
  if (!command) return usageError(`unknown command '${first}'`);
  return command.run(rest);
}
