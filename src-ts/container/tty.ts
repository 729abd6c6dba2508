/**
 * The parent's side of `tty: true` (docs/tty.md): the console socket a container's or an exec's
 * tty-open op sends the pty master over, and the master as a Node stream with resize().
 */
import { closeSync, readSync } from 'node:fs';
import { ReadStream } from 'node:tty';
import { ContainerError, errnoName } from '../errors.js';
import { native } from '../native/addon.js';
import { ttyDimension } from '../spec/tty.js';

/**
 * The master side of the process's terminal: one Duplex (a tty.ReadStream, which Node makes
 * readable and writable on a TTY handle). What the process writes comes out of it, what is
 * written to it is typed into the terminal (so the terminal echoes it, and '\x03' is ^C).
 * It ends when every process holding the slave has exited.
 */
export class Terminal extends ReadStream {
  readonly #fd: number;
  readonly #id: string;
  #drained = false;

  /** @internal The master fd, taken over (closed with the stream). */
  constructor(fd: number, id: string) {
    super(fd);
    this.#fd = fd;
    this.#id = id;
  }

  /**
   * The window size (TIOCSWINSZ on the master): the kernel sends SIGWINCH to the terminal's
   * foreground process group, as a terminal emulator's resize does.
   */
  resize(cols: number, rows: number): void {
    const c = ttyDimension(cols, 'cols');
    const r = ttyDimension(rows, 'rows');
    if (this.destroyed)
      throw new ContainerError(`container ${this.#id}: resize: the terminal is closed`, { code: 'ERR_INVALID_STATE', stage: 'run', containerId: this.#id });
    const e = native().pty.resize(this.#fd, c, r);
    if (e < 0) throw new ContainerError(`container ${this.#id}: resize: ${errnoName(-e)}`, { code: errnoName(-e), errno: -e, stage: 'run', containerId: this.#id });
  }

  /**
   * A master reads EIO once the last slave fd is closed: for the reader that is the end of the
   * output (what was written before it has been read), not an error.
   */
  override destroy(error?: Error): this {
    if ((error as NodeJS.ErrnoException | undefined)?.code === 'EIO' && !this.readableEnded) {
      this.push(null);
      return this;
    }
    return super.destroy(error);
  }

  /**
   * The end (libuv's EOF, or EIO above) only once the master is drained. libuv reports EOF when
   * poll says POLLHUP (the slave side closed) after a short read, but the kernel may still hold
   * output of the slave's in the pty's flip buffer then: a read of the master flushes it first,
   * and returns EIO only once nothing is left. Read to that point, synchronously (the fd is
   * non-blocking and libuv has stopped reading it).
   */
  override push(chunk: unknown, encoding?: BufferEncoding): boolean {
    if (chunk === null && !this.#drained) {
      this.#drained = true;
      const buf = Buffer.allocUnsafe(65536);
      for (;;) {
        let n: number;
        try {
          n = readSync(this.#fd, buf, 0, buf.length, null);
        } catch {
          break; // EIO: all of it read (EAGAIN: a slave is open still; what it writes later is lost)
        }
        if (n <= 0) break;
        super.push(Buffer.from(buf.subarray(0, n)));
      }
    }
    return super.push(chunk, encoding);
  }
}

/**
 * A console socket: the child's end goes to the child as a plan fd (tty-open sends the master
 * there), ours takes the master once the child is READY (tty-open comes before ready, and one
 * socket's datagram is queued before the other's is sent).
 */
export class ConsoleSocket {
  #parent: number;
  #child: number;

  constructor() {
    [this.#parent, this.#child] = native().pty.consoleSocket();
  }

  /** The fd to put among the Child's plan fds. */
  get childEnd(): number {
    return this.#child;
  }

  /** After new Child(): the child got its own copy in MSG_FDS (or was never made). */
  closeChildEnd(): void {
    if (this.#child >= 0) closeSync(this.#child);
    this.#child = -1;
  }

  /** At READY: the master as a stream; the socket is closed either way. */
  take(id: string): Terminal {
    const fd = native().pty.takeConsole(this.#parent);
    this.close();
    if (fd < 0)
      throw new ContainerError(`container ${id}: the terminal's master did not arrive on the console socket: ${errnoName(-fd)}`, { code: errnoName(-fd), errno: -fd, stage: 'sync', containerId: id });
    return new Terminal(fd, id);
  }

  /** Both ends (idempotent): a failed create or exec, or after take(). */
  close(): void {
    this.closeChildEnd();
    if (this.#parent >= 0) closeSync(this.#parent);
    this.#parent = -1;
  }
}

/**
 * run()'s and exec()'s streams with a terminal: all output comes from the master (a terminal has
 * no separate stderr), and `input` is typed into it once the process runs. It is not ended: a
 * terminal has no end of input but ^D at a line's start, which the caller may type itself.
 */
export function ttyIo(term: Terminal, input: string | Uint8Array | undefined, begin: () => Promise<void>) {
  return {
    stdin: null,
    stdout: term,
    stderr: null,
    input: undefined,
    begin: async () => {
      await begin();
      if (input !== undefined) term.write(input);
    },
  };
}
