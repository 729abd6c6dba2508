/**
 * Templates: create()'s pure work (buildSpec → buildPlan → encodePlan), done once per distinct
 * options and reused. A harness or a benchmark creates many containers from the same options;
 * only the id differs between them, and with it the default hostname (in /etc/hostname,
 * /etc/hosts and sethostname). The encoded plan was ~40% of create()'s JavaScript here.
 *
 * - The key is the options as JSON, without `id` and `signal` (per container). Options that are
 *   not plain data (a class instance such as a Container to join, an ImageStore, an AbortSignal
 *   elsewhere, a Date, undefined values, non-finite numbers, functions) have no key: they always
 *   take the full path, so a key never stands for two different inputs.
 * - What the options do not say is checked on every create(), as before: the facts the plan was
 *   built from (is each bind source a file, the init binary, the cgroup layout) must be the same,
 *   else the plan is built again and replaces the template; and the disk checks run every time.
 *   Those decide on what lstat, stat and readlink give for a list of paths, the same list for the
 *   same spec and plan: the template keeps what they saw when they last passed (check.ts Seen),
 *   and when every call gives the same again (type, mode, inode, size, times), the walk around
 *   the calls is skipped. Anything else runs the checks in full.
 * - The hostname's places in the buffer (and in the ops) are found when the template is made, by
 *   building the plan a second time with another hostname of the same length and comparing:
 *   every byte that differs is one. A container whose hostname has another length (an id of
 *   another length given) takes the full path.
 * - An image is resolved on every create() (its ref may point elsewhere now); the key is then
 *   that of the resolved options (the image's top layer as rootfs, its process) and its layers.
 * - Not templated: keep: true (a directory per container), joined namespaces (opened per call).
 *
 * The template's spec is a frozen copy; each container gets a shallow copy of it with its id and
 * hostname.
 */
import type { FsFacts, Op, Plan } from '../plan/plan.js';
import type { Seen } from '../spec/check.js';
import { defaultHostname, validId, type ContainerOptions, type Spec } from '../spec/spec.js';

const MAX_TEMPLATES = 32;

export interface Template {
  readonly spec: Spec;
  readonly plan: Plan;
  readonly facts: string;
  readonly layout: string | undefined;
  /** The buffer, patched in place for each container (the addon copies it at once). */
  readonly buf: Buffer;
  /** Offsets of the hostname in buf, and [op index, field, offsets] in the ops; empty when fixed. */
  readonly holes: readonly number[];
  readonly opHoles: readonly (readonly [number, string, readonly number[]])[];
  /** What the disk checks (checkSymlinks, checkExec) looked at when they last passed for it. */
  checked?: Seen;
}

const templates = new Map<string, Template>();

/**
 * The options' key, or null when they are not plain data. `layers`: an image's layer directories
 * (the options then are the image's resolved ones, with its top layer as rootfs).
 */
export function templateKey(options: ContainerOptions, layers?: readonly string[]): string | null {
  if (options === null || typeof options !== 'object' || options.image !== undefined || options.keep === true) return null;
  let plain = true;
  let key: string | undefined;
  try {
    key = JSON.stringify(options, function (this: Record<string, unknown>, k: string, v: unknown) {
      if (this === (options as unknown) && (k === 'id' || k === 'signal')) return undefined;
      const raw = k === '' ? v : this[k]; // before toJSON
      switch (typeof raw) {
        case 'string':
        case 'boolean':
          return v;
        case 'number':
          if (!Number.isFinite(raw)) plain = false;
          return v;
        case 'object': {
          if (raw === null || Array.isArray(raw)) return v;
          const proto = Object.getPrototypeOf(raw);
          if (proto === Object.prototype || proto === null) return v;
          plain = false;
          return undefined;
        }
        default:
          plain = false;
          return undefined;
      }
    });
  } catch {
    return null;
  }
  if (!plain || key === undefined) return null;
  // A join names another container or a namespace file, opened per call.
  const ns = options.namespaces as Record<string, unknown> | undefined;
  if (ns && typeof ns === 'object' && Object.values(ns).some((v) => v !== null && typeof v === 'object')) return null;
  return layers ? `${key}\0${layers.join('\0')}` : key;
}

export function lookupTemplate(key: string | null): Template | undefined {
  return key === null ? undefined : templates.get(key);
}

/** This container's spec from the template, or null when it cannot be one (a hostname of another length). */
export function specFrom(t: Template, options: ContainerOptions, newId: () => string): Spec | null {
  const id = options.id ?? newId();
  if (typeof id !== 'string' || !validId(id)) return null;
  if (t.holes.length === 0) return { ...t.spec, id }; // options.hostname (in the key) is the hostname
  const hostname = defaultHostname(id);
  return hostname.length === t.spec.hostname.length ? { ...t.spec, id, hostname } : null;
}

export function factsKey(facts: FsFacts): string {
  return `${facts.bindSourceIsFile.map(Number).join('')}:${facts.initBinary ?? ''}`;
}

/** The plan for this container: the template's, with its hostname. */
export function planFrom(t: Template, hostname: string): Plan {
  if (t.opHoles.length === 0) return t.plan;
  const ops = t.plan.ops.slice();
  for (const [i, field, at] of t.opHoles) {
    const op = ops[i] as unknown as Record<string, string>;
    let s = op[field]!;
    for (const o of at) s = s.slice(0, o) + hostname + s.slice(o + hostname.length);
    ops[i] = { ...op, [field]: s } as unknown as Op;
  }
  return { ...t.plan, ops };
}

/** The encoded plan for this container (the template's buffer, its hostname written in). */
export function bytesFrom(t: Template, hostname: string): Buffer {
  for (const o of t.holes) t.buf.write(hostname, o, 'latin1');
  return t.buf;
}

/**
 * Makes and keeps the template for `key` from a full build (spec, plan), and returns the
 * encoded plan. `rebuild(hostname)` builds the same plan with another hostname.
 */
export function storeTemplate(
  key: string | null,
  options: ContainerOptions,
  spec: Spec,
  plan: Plan,
  facts: FsFacts,
  layout: string | undefined,
  encode: (plan: Plan) => Buffer,
  rebuild: (spec: Spec) => Plan,
): Buffer {
  const buf = encode(plan);
  if (key === null || spec.keep || spec.joins.length > 0) return buf;
  // A container given an id whose hostname has another length (the template could not serve it)
  // keeps the template of these options: the next one with a default id uses it again, rather
  // than each such id making every create() from these options take the full path.
  const kept = options.id === undefined ? undefined : templates.get(key);
  if (kept && kept.facts === factsKey(facts) && kept.layout === layout) return buf;
  let holes: number[] = [];
  let opHoles: [number, string, number[]][] = [];
  if (options.hostname === undefined && spec.hostname !== '') {
    const other = [...spec.hostname].map((c) => (c === 'x' ? 'y' : 'x')).join('');
    const plan2 = rebuild({ ...spec, hostname: other });
    const buf2 = encode(plan2);
    const found = diffHoles(buf, buf2, spec.hostname, other);
    if (found === null || plan2.ops.length !== plan.ops.length) return buf;
    holes = found;
    for (let i = 0; i < plan.ops.length; i++) {
      const a = plan.ops[i] as unknown as Record<string, unknown>;
      const b = plan2.ops[i] as unknown as Record<string, unknown>;
      for (const field of Object.keys(a)) {
        if (a[field] === b[field]) continue;
        if (typeof a[field] !== 'string' || typeof b[field] !== 'string') return buf;
        const at = diffHoles(Buffer.from(a[field] as string, 'latin1'), Buffer.from(b[field] as string, 'latin1'), spec.hostname, other);
        if (at === null) return buf;
        opHoles.push([i, field, at]);
      }
    }
  }
  let frozen: Spec;
  try {
    frozen = deepFreeze(structuredClone(spec)); // a copy: the spec may share objects with the options
  } catch {
    return buf;
  }
  if (templates.size >= MAX_TEMPLATES) templates.delete(templates.keys().next().value!);
  templates.set(key, { spec: frozen, plan, facts: factsKey(facts), layout, buf: Buffer.from(buf), holes, opHoles });
  return buf;
}

/**
 * Where a and b differ: runs that are exactly the hostname in a and `other` in b, each
 * `name.length` long. Null when anything else differs (the template is then not made).
 */
function diffHoles(a: Buffer, b: Buffer, name: string, other: string): number[] | null {
  if (a.length !== b.length || !/^[\x21-\x7e]+$/.test(name)) return null;
  const n = name.length;
  const out: number[] = [];
  for (let i = 0; i < a.length; ) {
    if (a[i] === b[i]) {
      i++;
      continue;
    }
    if (a.toString('latin1', i, i + n) !== name || b.toString('latin1', i, i + n) !== other) return null;
    out.push(i);
    i += n;
  }
  return out.length > 0 ? out : null;
}

function deepFreeze<T>(o: T): T {
  if (o !== null && typeof o === 'object' && !Object.isFrozen(o) && !ArrayBuffer.isView(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

/** For tests: forget every template. */
export function clearTemplates(): void {
  templates.clear();
}
