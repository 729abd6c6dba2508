/**
 * A container's cgroup: one interface (create, apply, add, freeze/thaw, kill all, stats, destroy)
 * over the two hierarchies. The parent does all of it from here, with a few synchronous file
 * writes before the clone and none on the path of a container that asked for no cgroup.
 */
import { accessSync, closeSync, constants as fsc, mkdirSync, openSync, readdirSync, readFileSync, readSync, rmdirSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { ContainerError, errnoMessage, errnoName, errnoNumber } from '../errors.js';
import { native } from '../native/addon.js';
import { deviceFilter, encodeInsns } from './device-filter.js';
import { cgroupLayout, type CgroupLayout } from './layout.js';
import { parseKeyed, v1Writes, v2Controllers, v2Writes, type CgroupSpec, type CgroupStats, type DeviceRule } from './resources.js';

export interface CgroupManager {
  readonly kind: 'v1' | 'v2';
  /** The container's cgroup directories: one per v1 hierarchy, or the one v2 directory. */
  readonly dirs: readonly string[];
  /** v2: an fd of the directory, for CLONE_INTO_CGROUP (-1 on v1); closed by closeCloneFd(). */
  readonly cloneFd: number;
  closeCloneFd(): void;
  /** v2: a new fd of the directory, for another CLONE_INTO_CGROUP (an exec's; the caller closes it). v1: -1. */
  openDir(id?: string): number;
  /** Moves a process in (v1: the container's, right after its clone; an exec's, before it starts). */
  add(pid: number): void;
  /** Resolves once every process of the cgroup is frozen. */
  freeze(): Promise<void>;
  thaw(): void;
  /** A process (or a zombie not yet released) is in the cgroup. */
  populated(): boolean;
  /** Kills every process in the cgroup, however it got there, and waits until none is left. */
  killAll(): Promise<void>;
  stats(): CgroupStats;
  /** Processes the OOM killer killed in this cgroup so far. */
  oomKills(): number;
  /** Removes the directories (killing what is left first). Idempotent. */
  destroy(): Promise<void>;
}

/** How long freeze, kill-all and destroy wait for the kernel before giving up (ETIMEDOUT). */
const SETTLE_MS = 5000;

/** The name of a container's cgroup: the creator's pid lets a later process find what a crash left. */
export const cgroupName = (id: string, pid = process.pid) => `sbx-${pid}-${id}`;
const NAME_RE = /^sbx-(\d+)-(.+)$/;

function cgroupError(e: unknown, path: string, what: string, id?: string): ContainerError {
  const err = e as NodeJS.ErrnoException;
  const code = err.code ?? 'ERR_INTERNAL';
  const errno = errnoNumber(code);
  return new ContainerError(`${id === undefined ? '' : `container ${id}: `}cgroup: ${what} ${path}: ${code}${err.message ? ` (${err.message.replace(/^\w+: /, '')})` : ''}`, {
    code,
    stage: 'cgroup',
    path,
    ...(errno === undefined ? {} : { errno }),
    ...(id === undefined ? {} : { containerId: id }),
    cause: e,
  });
}

function unavailable(message: string, code: string, id: string, path?: string): ContainerError {
  return new ContainerError(`container ${id}: cgroup: ${message}`, {
    code,
    stage: 'cgroup',
    containerId: id,
    ...(path === undefined ? {} : { path }),
    ...(errnoNumber(code) === undefined ? {} : { errno: errnoNumber(code) }),
  });
}

function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

function write(path: string, value: string, id?: string): void {
  try {
    writeFileSync(path, value);
  } catch (e) {
    throw cgroupError(e, path, `write ${JSON.stringify(value)} to`, id);
  }
}

/** One step of a cgroup's file work: see files(). */
type FileOp = readonly [kind: 'mkdir' | 'write' | 'open' | 'rmdir', path: string, value?: string];

/**
 * Runs the ops in order in one native call (src-native/parent/cgroupfs.cc: on a container's path
 * node:fs costs about what the kernel does) and returns the fds of its 'open' ops. The directories
 * its 'mkdir' ops made are appended to `made`. The first failure is thrown as the ContainerError a
 * single call would give (stage 'cgroup', the path, the errno); the ops after it are not run.
 */
function files(ops: readonly FileOp[], id?: string, made?: string[]): number[] {
  const flat: string[] = [];
  for (const [kind, path, value] of ops) flat.push(kind, path, value ?? '');
  const [done, errno, ...fds] = native().cgroupFiles(flat) as [number, number, ...number[]];
  if (made) for (let i = 0; i < done; i++) if (ops[i]![0] === 'mkdir') made.push(ops[i]![1]);
  if (errno === 0) return fds;
  for (const fd of fds) closeSync(fd);
  const [kind, path, value] = ops[done]!;
  const e = Object.assign(new Error(errnoMessage(errno)), { code: errnoName(errno) });
  throw cgroupError(e, path, kind === 'write' ? `write ${JSON.stringify(value)} to` : kind, id);
}

function pidsOf(dir: string): number[] {
  const t = read(`${dir}/cgroup.procs`);
  return t ? t.split('\n').filter(Boolean).map(Number) : [];
}

function signalAll(dir: string): void {
  for (const pid of pidsOf(dir))
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone meanwhile */
    }
}

async function until(cond: () => boolean, what: string, path: string): Promise<void> {
  const t0 = Date.now();
  for (let delay = 0; !cond(); delay = Math.min(delay * 2 || 1, 50)) {
    if (Date.now() - t0 > SETTLE_MS) throw cgroupError(Object.assign(new Error(`timed out waiting to ${what}`), { code: 'ETIMEDOUT' }), path, what);
    await sleep(delay);
  }
}

/**
 * rmdir first, without looking: an empty cgroup (the usual case at delete(), PID 1 reaped and the
 * PID namespace gone with it) costs one syscall. EBUSY: something is still in it; kill it all and
 * retry until the last process is released (a zombie keeps its cgroup populated).
 */
async function removeDir(dir: string, killAll: () => Promise<void>): Promise<void> {
  const t0 = Date.now();
  for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
    try {
      rmdirSync(dir);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || Date.now() - t0 > SETTLE_MS) throw cgroupError(e, dir, 'rmdir');
      await killAll();
      await sleep(delay);
    }
  }
}

/** mkdir, refusing what exists: a directory of another container (or one a crash left) is not ours. */
function makeDir(dir: string, made: string[], id?: string): void {
  try {
    mkdirSync(dir);
    made.push(dir);
  } catch (e) {
    throw cgroupError(e, dir, 'mkdir', id);
  }
}

/** A cgroup path ('/', '/a/b') as a directory of the hierarchy mounted at root. */
function parentDir(root: string, parent: string): string {
  return parent === '/' ? root : root + parent;
}

function rollback(made: string[]): void {
  for (const d of made.reverse())
    try {
      rmdirSync(d);
    } catch {
      /* nothing was put in it; best effort */
    }
}

/**
 * Without root, a cgroup is ours only in a subtree delegated to us (systemd's Delegate=yes): the
 * parent and its cgroup.procs writable.
 */
export function delegated(parent: string, access: (p: string) => void = (p) => accessSync(p, fsc.W_OK)): boolean {
  try {
    access(parent);
    access(`${parent}/cgroup.procs`);
    return true;
  } catch {
    return false;
  }
}

class V2Cgroup implements CgroupManager {
  readonly kind = 'v2' as const;
  readonly dirs: readonly string[];
  cloneFd = -1;
  #gone = false;
  constructor(readonly dir: string) {
    this.dirs = [dir];
  }
  openDir(id?: string): number {
    try {
      return openSync(this.dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
    } catch (e) {
      throw cgroupError(e, this.dir, 'open', id);
    }
  }
  closeCloneFd(): void {
    if (this.cloneFd >= 0) closeSync(this.cloneFd);
    this.cloneFd = -1;
  }
  add(pid: number): void {
    write(`${this.dir}/cgroup.procs`, String(pid));
  }
  async freeze(): Promise<void> {
    write(`${this.dir}/cgroup.freeze`, '1');
    await until(() => parseKeyed(read(`${this.dir}/cgroup.events`) ?? '').get('frozen') === 1, 'freeze', this.dir);
  }
  thaw(): void {
    write(`${this.dir}/cgroup.freeze`, '0');
  }
  populated(): boolean {
    return parseKeyed(read(`${this.dir}/cgroup.events`) ?? '').get('populated') === 1;
  }
  async killAll(): Promise<void> {
    if (!this.populated()) return;
    try {
      writeFileSync(`${this.dir}/cgroup.kill`, '1'); // Linux 5.14: the kernel kills them all, forks included
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw cgroupError(e, `${this.dir}/cgroup.kill`, 'write "1" to');
      await this.freeze(); // older kernels: nothing forks while frozen; SIGKILL acts at thaw
      signalAll(this.dir);
      this.thaw();
    }
    await until(() => !this.populated(), 'empty the cgroup', this.dir);
  }
  stats(): CgroupStats {
    const s: CgroupStats = {};
    const cur = read(`${this.dir}/memory.current`);
    if (cur !== null) {
      const peak = read(`${this.dir}/memory.peak`);
      s.memory = { current: Number(cur), ...(peak === null ? {} : { peak: Number(peak) }) };
    }
    const cpu = parseKeyed(read(`${this.dir}/cpu.stat`) ?? '');
    if (cpu.has('usage_usec')) s.cpu = { usageUsec: cpu.get('usage_usec')!, userUsec: cpu.get('user_usec') ?? 0, systemUsec: cpu.get('system_usec') ?? 0 };
    const pids = read(`${this.dir}/pids.current`);
    if (pids !== null) s.pids = { current: Number(pids) };
    const ev = read(`${this.dir}/memory.events`);
    if (ev !== null) {
      const e = parseKeyed(ev);
      s.oom = { oomKill: e.get('oom_kill') ?? 0, oom: e.get('oom') ?? 0 };
    }
    return s;
  }
  oomKills(): number {
    return parseKeyed(read(`${this.dir}/memory.events`) ?? '').get('oom_kill') ?? 0;
  }
  async destroy(): Promise<void> {
    if (this.#gone) return;
    this.closeCloneFd();
    await removeDir(this.dir, () => this.killAll());
    this.#gone = true;
  }
}

/**
 * v1 controllers every container cgroup joins besides those its limits need: stats. Each costs a
 * mkdir, a move and an rmdir per container; the freezer (pause, kill all) is joined only when
 * first needed (V1Cgroup#joinFreezer).
 */
const V1_BASE = ['memory', 'pids', 'cpuacct'];
const OOM_BUF = Buffer.alloc(512);

class V1Cgroup implements CgroupManager {
  readonly kind = 'v1' as const;
  readonly cloneFd = -1;
  #gone = false;
  /** memory.oom_control, opened when the process is moved in (while the child sets up): read again at exit. */
  #oomFd = -1;
  /**
   * at: controller → directory (co-mounted controllers share one); lazyFreezer: where the freezer
   * cgroup goes when pause or kill-all first needs it (absent: no freezer hierarchy, or joined).
   */
  constructor(
    readonly at: Map<string, string>,
    private lazyFreezer?: string,
  ) {}
  get dirs(): string[] {
    return [...new Set(this.at.values())];
  }
  closeCloneFd(): void {}
  openDir(): number {
    return -1;
  }
  add(pid: number): void {
    const ops: FileOp[] = this.dirs.map((d) => ['write', `${d}/cgroup.procs`, String(pid)]);
    const m = this.at.get('memory');
    const oom = m !== undefined && this.#oomFd < 0;
    if (!oom) {
      files(ops);
      return;
    }
    ops.push(['open', `${m}/memory.oom_control`]);
    try {
      this.#oomFd = files(ops)[0] ?? -1;
    } catch (e) {
      // The moves failed, or only the open did: then memory.oom_control is read by path.
      if (!(e instanceof ContainerError && e.path === ops[ops.length - 1]![1])) throw e;
    }
  }
  /**
   * Moves every process of the container into a freezer cgroup of its own, until none is missing:
   * a process forked meanwhile by one already moved is born there, so the loop ends.
   */
  async #joinFreezer(): Promise<string | undefined> {
    const f = this.lazyFreezer;
    if (this.at.has('freezer') || f === undefined) return this.at.get('freezer');
    makeDir(f, []);
    this.at.set('freezer', f);
    this.lazyFreezer = undefined;
    await until(() => {
      const inside = new Set(pidsOf(f));
      const missing = [...new Set(this.dirs.filter((d) => d !== f).flatMap(pidsOf))].filter((p) => !inside.has(p));
      for (const pid of missing)
        try {
          writeFileSync(`${f}/cgroup.procs`, String(pid));
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw cgroupError(e, `${f}/cgroup.procs`, 'move the container into');
        }
      return missing.length === 0;
    }, 'join the freezer', f);
    return f;
  }
  async freeze(): Promise<void> {
    const f = await this.#joinFreezer();
    if (!f) throw cgroupError(Object.assign(new Error('the freezer controller is not mounted'), { code: 'ENOTSUP' }), this.dirs[0]!, 'freeze');
    write(`${f}/freezer.state`, 'FROZEN');
    await until(() => read(`${f}/freezer.state`)?.trim() === 'FROZEN', 'freeze', f);
  }
  thaw(): void {
    const f = this.at.get('freezer');
    if (f) write(`${f}/freezer.state`, 'THAWED');
  }
  populated(): boolean {
    return this.dirs.some((d) => pidsOf(d).length > 0);
  }
  async killAll(): Promise<void> {
    if (!this.populated()) return;
    // Frozen, nothing can fork between reading the list and the signals; SIGKILL acts at thaw.
    const f = await this.#joinFreezer();
    if (f) {
      await this.freeze();
      signalAll(f);
      this.thaw();
    }
    await until(() => {
      for (const d of this.dirs) signalAll(d); // without a freezer: until none is left
      return !this.populated();
    }, 'empty the cgroup', this.dirs[0]!);
  }
  stats(): CgroupStats {
    const s: CgroupStats = {};
    const m = this.at.get('memory');
    if (m) {
      const cur = read(`${m}/memory.usage_in_bytes`);
      const peak = read(`${m}/memory.max_usage_in_bytes`);
      if (cur !== null) s.memory = { current: Number(cur), ...(peak === null ? {} : { peak: Number(peak) }) };
      const oc = parseKeyed(read(`${m}/memory.oom_control`) ?? '');
      s.oom = { oomKill: oc.get('oom_kill') ?? 0, oom: Number(read(`${m}/memory.failcnt`) ?? 0) };
    }
    const a = this.at.get('cpuacct');
    if (a) {
      const usage = read(`${a}/cpuacct.usage`);
      const st = parseKeyed(read(`${a}/cpuacct.stat`) ?? '');
      // cpuacct.stat counts USER_HZ ticks: 100 a second on Linux, whatever the kernel's HZ.
      if (usage !== null) s.cpu = { usageUsec: Math.floor(Number(usage) / 1000), userUsec: (st.get('user') ?? 0) * 10000, systemUsec: (st.get('system') ?? 0) * 10000 };
    }
    const p = this.at.get('pids');
    const pc = p ? read(`${p}/pids.current`) : null;
    if (pc !== null) s.pids = { current: Number(pc) };
    return s;
  }
  oomKills(): number {
    const m = this.at.get('memory');
    if (!m) return 0;
    let text: string | null = null;
    if (this.#oomFd >= 0) {
      try {
        const n = readSync(this.#oomFd, OOM_BUF, 0, OOM_BUF.length, 0); // a seq file: offset 0 reads it anew
        text = OOM_BUF.toString('latin1', 0, n);
      } catch {
        text = null;
      }
    }
    return parseKeyed(text ?? read(`${m}/memory.oom_control`) ?? '').get('oom_kill') ?? 0;
  }
  async destroy(): Promise<void> {
    if (this.#gone) return;
    if (this.#oomFd >= 0) closeSync(this.#oomFd);
    this.#oomFd = -1;
    // All at once when they are empty (the usual case); from the first that is not, one by one.
    // dirs is read again each time: a kill-all on the way may have joined the freezer.
    const [done] = native().cgroupFiles(this.dirs.flatMap((d) => ['rmdir', d, '']));
    for (let i = done!; i < this.dirs.length; i++) await removeDir(this.dirs[i]!, () => this.killAll());
    this.#gone = true;
  }
}

/** Which manager this host gets: v1 on v1 and hybrid hosts (the controllers are there), else v2. */
function applyV2(layout: CgroupLayout, spec: CgroupSpec, id: string): V2Cgroup {
  const root = layout.v2!;
  const parent = parentDir(root, spec.parent ?? layout.self.get('') ?? '/');
  if (process.getuid?.() !== 0 && !delegated(parent))
    throw unavailable(`${parent} is not delegated to uid ${process.getuid?.()}: limits are unavailable without a writable cgroup subtree (systemd: Delegate=yes)`, 'EACCES', id, parent);
  const writes = v2Writes(spec.resources);
  if (spec.parent) mkdirParents(root, spec.parent, id);
  enableControllers(root, spec.parent ?? layout.self.get('') ?? '/', v2Controllers(writes), id);
  const made: string[] = [];
  const cg = new V2Cgroup(`${parent}/${cgroupName(id)}`);
  try {
    const ops: FileOp[] = [['mkdir', cg.dir], ...writes.map((w): FileOp => ['write', `${cg.dir}/${w.file}`, w.value]), ['open', cg.dir]];
    cg.cloneFd = files(ops, id, made)[0]!;
    if (spec.resources.devices) attachDevices(cg, spec.resources.devices, id);
  } catch (e) {
    rollback(made);
    throw e;
  }
  return cg;
}

/** v2 has no devices files: the allow-list is a BPF program on the cgroup (as runc and crun). */
function attachDevices(cg: V2Cgroup, rules: readonly DeviceRule[], id: string): void {
  try {
    native().attachDeviceFilter(cg.cloneFd, encodeInsns(deviceFilter(rules)));
  } catch (e) {
    const err = e as Error & { errno?: number };
    throw cgroupError(Object.assign(err, { code: err.errno ? errnoName(err.errno) : 'ERR_INTERNAL' }), cg.dir, 'attach the device filter (BPF_PROG_TYPE_CGROUP_DEVICE) to', id);
  }
}

function mkdirParents(root: string, parent: string, id: string): void {
  let dir = root;
  for (const part of parent.split('/').filter(Boolean)) {
    dir += `/${part}`;
    try {
      mkdirSync(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw cgroupError(e, dir, 'mkdir', id);
    }
  }
}

/** Each level from the root down to the parent hands the controllers down (cgroup.subtree_control). */
function enableControllers(root: string, parent: string, controllers: readonly string[], id: string): void {
  if (controllers.length === 0) return;
  let dir = root;
  const levels = [root, ...parent.split('/').filter(Boolean).map((p) => (dir += `/${p}`))];
  for (const level of levels) {
    const on = new Set((read(`${level}/cgroup.subtree_control`) ?? '').trim().split(' '));
    const missing = controllers.filter((c) => !on.has(c));
    if (missing.length === 0) continue;
    const available = new Set((read(`${level}/cgroup.controllers`) ?? '').trim().split(' '));
    const absent = missing.filter((c) => !available.has(c));
    if (absent.length > 0)
      throw unavailable(`controller ${absent.join(', ')} is not available in ${level} (cgroup.controllers)`, 'ENOTSUP', id, `${level}/cgroup.controllers`);
    // EBUSY here: the level holds processes (the "no internal processes" rule); a cgroup.path of
    // its own for the containers avoids it.
    write(`${level}/cgroup.subtree_control`, missing.map((c) => `+${c}`).join(' '), id);
  }
}

function applyV1(layout: CgroupLayout, spec: CgroupSpec, id: string): V1Cgroup {
  const writes = v1Writes(spec.resources);
  const wanted = new Set<string>([...V1_BASE.filter((c) => layout.v1.has(c)), ...writes.map((w) => w.controller)]);
  const at = new Map<string, string>();
  const name = cgroupName(id);
  const freezer = layout.v1.get('freezer');
  const lazyFreezer = freezer && !wanted.has('freezer') ? `${parentDir(freezer, spec.parent ?? layout.self.get('freezer') ?? '/')}/${name}` : undefined;
  for (const c of wanted) {
    const mount = layout.v1.get(c);
    if (!mount) {
      const option = writes.find((w) => w.controller === c)!.file;
      throw unavailable(`the ${c} controller is not mounted on this host (for ${option})`, 'ENOTSUP', id);
    }
    const parent = parentDir(mount, spec.parent ?? layout.self.get(c) ?? '/');
    if (process.getuid?.() !== 0 && !delegated(parent))
      throw unavailable(`${parent} is not writable by uid ${process.getuid?.()}: limits are unavailable without root on cgroup v1`, 'EACCES', id, parent);
    at.set(c, `${parent}/${name}`);
  }
  const made: string[] = [];
  const ops: FileOp[] = [];
  try {
    for (const [c, dir] of at) {
      if (ops.some((o) => o[1] === dir)) continue; // co-mounted with an earlier controller
      if (spec.parent) mkdirParents(layout.v1.get(c)!, spec.parent, id);
      ops.push(['mkdir', dir]);
    }
    // A new cpuset is empty and holds no process until given cpus and mems: the parent's, unless asked.
    const cs = at.get('cpuset');
    if (cs) {
      const up = cs.slice(0, cs.lastIndexOf('/'));
      for (const f of ['cpuset.cpus', 'cpuset.mems'])
        if (!writes.some((w) => w.file === f)) ops.push(['write', `${cs}/${f}`, read(`${up}/${f}`)?.trim() || '\n']);
    }
    for (const w of writes) ops.push(['write', `${at.get(w.controller)}/${w.file}`, w.value]);
    files(ops, id, made);
  } catch (e) {
    rollback(made);
    throw e;
  }
  if (lazyFreezer && made.includes(lazyFreezer)) {
    at.set('freezer', lazyFreezer); // co-mounted with a controller it joined already
    return new V1Cgroup(at);
  }
  if (lazyFreezer && spec.parent) mkdirParents(freezer!, spec.parent, id);
  return new V1Cgroup(at, lazyFreezer);
}

let layoutOverride: CgroupLayout | undefined;

/** For tests on a hybrid host: run the v2 code on its cgroup2 tree (internals only). */
export function overrideCgroupLayout(layout: CgroupLayout | undefined): void {
  layoutOverride = layout;
}

export function currentLayout(): CgroupLayout {
  return layoutOverride ?? cgroupLayout();
}

/**
 * Makes the container's cgroup and applies its limits, before the clone. Throws a ContainerError
 * (stage 'cgroup', with the file and errno) and leaves no directory behind when anything fails.
 */
export function createCgroup(spec: CgroupSpec, id: string, layout = currentLayout()): CgroupManager {
  if (layout.kind === 'none') throw unavailable('no cgroup hierarchy is mounted on this host', 'ENOTSUP', id);
  return layout.kind === 'v2' ? applyV2(layout, spec, id) : applyV1(layout, spec, id);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * After a crash: removes the cgroups that processes which no longer exist left under `path` (the
 * parent their containers used; default this process's own cgroup), killing whatever still runs
 * in them. Returns the directories removed.
 */
export async function cleanupCgroups(options: { path?: string } = {}): Promise<string[]> {
  const layout = currentLayout();
  const found = new Map<string, Map<string, string>>(); // name → controller → dir
  const roots: [string, string][] =
    layout.kind === 'v2' ? [['', layout.v2!]] : [...layout.v1].filter(([c]) => layout.v1.get(c) !== undefined);
  for (const [c, mount] of roots) {
    const parent = parentDir(mount, options.path ?? layout.self.get(c) ?? '/');
    let entries: string[];
    try {
      entries = readdirSync(parent);
    } catch {
      continue;
    }
    for (const e of entries) {
      const m = NAME_RE.exec(e);
      if (!m || Number(m[1]) === process.pid || alive(Number(m[1]))) continue;
      if (!found.has(e)) found.set(e, new Map());
      found.get(e)!.set(c, `${parent}/${e}`);
    }
  }
  const removed: string[] = [];
  for (const at of found.values()) {
    const cg = layout.kind === 'v2' ? new V2Cgroup(at.get('')!) : new V1Cgroup(at);
    await cg.destroy();
    removed.push(...cg.dirs);
  }
  return removed;
}
