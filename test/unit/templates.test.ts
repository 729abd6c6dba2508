/**
 * Templates (src-ts/container/templates.ts): create()'s pure work reused for repeated options.
 * The property that matters: a container made from a template gets exactly the spec, the ops and
 * the bytes a full build would have given it.
 */
import { describe, expect, it } from 'vitest';
import { bytesFrom, clearTemplates, lookupTemplate, planFrom, specFrom, storeTemplate, templateKey } from '../../src-ts/container/templates.js';
import { encodePlan } from '../../src-ts/plan/encode.js';
import { buildPlan, type FsFacts, type HostInfo } from '../../src-ts/plan/plan.js';
import type { HostCaps } from '../../src-ts/security/capabilities.js';
import { buildSpec, type ContainerOptions, type Spec } from '../../src-ts/spec/spec.js';

const HOST: HostInfo = { cgroup: 'hybrid', resolvConf: 'nameserver 1.1.1.1\n', mountMode: 'base' };
const CAPS: HostCaps = { last: 40, bounding: 2 ** 41 - 1 };
const facts = (s: Spec): FsFacts => ({ bindSourceIsFile: s.mounts.map(() => false), ...(s.init ? { initBinary: '/opt/scratch-init' } : {}) });
const full = (o: ContainerOptions, id: string) => {
  const spec = buildSpec(o, () => id, { caps: CAPS });
  const plan = buildPlan(spec, HOST, facts(spec));
  return { spec, plan, buf: encodePlan(plan) };
};
/** What create() does on a miss: the full build, which stores the template. */
function store(o: ContainerOptions, id: string) {
  const { spec, plan } = full(o, id);
  return storeTemplate(templateKey(o), o, spec, plan, facts(spec), undefined, encodePlan, (s) => buildPlan(s, HOST, facts(s)));
}
/** What create() does on a hit. */
function fromTemplate(o: ContainerOptions, id: string) {
  const t = lookupTemplate(templateKey(o));
  if (!t) return null;
  const spec = specFrom(t, o, () => id);
  if (!spec) return null;
  const plan = planFrom(t, spec.hostname);
  return { spec, plan, buf: Buffer.from(bytesFrom(t, spec.hostname)) };
}

describe('templateKey', () => {
  const base = { rootfs: '/srv/rootfs', args: ['/true'] };

  it('is the same for options that differ only in id or signal, and differs otherwise', () => {
    const k = templateKey(base);
    expect(k).not.toBeNull();
    expect(templateKey({ ...base, id: 'one' })).toBe(k);
    expect(templateKey({ ...base, signal: new AbortController().signal })).toBe(k);
    expect(templateKey({ ...base, args: ['/true', 'x'] })).not.toBe(k);
    expect(templateKey({ ...base, hostname: 'h' })).not.toBe(k);
    expect(templateKey({ ...base, env: { A: '1' } })).not.toBe(templateKey({ ...base, env: { A: '2' } }));
  });

  it('is null for what is not plain data, so no two different inputs share one', () => {
    const cases: unknown[] = [
      { ...base, stdio: undefined },
      { ...base, umask: NaN },
      { ...base, cwd: new Date(0) },
      { ...base, args: ['/true', () => 1] },
      { ...base, env: new Map() },
      { ...base, namespaces: { pid: { path: '/proc/1/ns/pid' } } },
      { ...base, keep: true },
      { ...base, image: 'x' },
      { ...base, oomScoreAdj: 1n },
      { ...base, mounts: [new (class M {})()] },
    ];
    for (const o of cases) expect(templateKey(o as ContainerOptions), String(Object.keys(o as object))).toBeNull();
  });
});

describe('a container from a template', () => {
  const cases: [string, ContainerOptions][] = [
    ['the defaults', { rootfs: '/srv/rootfs', args: ['/true'] }],
    ['a fixed hostname', { rootfs: '/srv/rootfs', args: ['/sleep', '1'], hostname: 'fixed.example' }],
    ['tty, init, env, privileged', { rootfs: '/srv/rootfs', args: ['/sh'], tty: true, init: true, env: { A: 'b' }, privileged: true }],
    ['no network namespace, readonly root', { rootfs: '/srv/rootfs', args: ['/true'], namespaces: { network: false }, readonlyRootfs: true }],
  ];

  it.each(cases)('%s: the same spec, ops and bytes as a full build', (_name, o) => {
    clearTemplates();
    store(o, '0123456789abcdef');
    // The hostname's places: /etc/hostname, /etc/hosts, sethostname (none when it is fixed).
    expect(lookupTemplate(templateKey(o))!.holes).toHaveLength(o.hostname === undefined ? 3 : 0);
    for (const id of ['fedcba9876543210', 'aaaaaaaaaaaaxxxx', 'xxxxxxxxxxxx0000']) {
      const t = fromTemplate(o, id);
      expect(t, id).not.toBeNull();
      const f = full(o, id);
      expect(t!.spec).toEqual(f.spec);
      expect(t!.plan).toEqual(f.plan);
      expect(t!.buf.equals(f.buf), id).toBe(true);
    }
  });

  it('an id whose hostname has another length takes the full path; the template is untouched', () => {
    clearTemplates();
    const o = { rootfs: '/srv/rootfs', args: ['/true'] };
    store(o, '0123456789abcdef');
    expect(fromTemplate({ ...o, id: 'short' }, 'unused')).toBeNull();
    expect(fromTemplate({ ...o, id: 'bad id!' }, 'unused')).toBeNull();
    const t = fromTemplate(o, 'fedcba9876543210')!;
    expect(t.buf.equals(full(o, 'fedcba9876543210').buf)).toBe(true);
  });

  it("that full path's build does not replace the template: the next container with a default id uses it again", () => {
    clearTemplates();
    const o = { rootfs: '/srv/rootfs', args: ['/true'] };
    store(o, '0123456789abcdef');
    const before = lookupTemplate(templateKey(o));
    store({ ...o, id: 'short-1' }, 'short-1'); // what create() does for it (a hostname of 7)
    expect(lookupTemplate(templateKey(o))).toBe(before);
    expect(fromTemplate(o, 'fedcba9876543210')!.buf.equals(full(o, 'fedcba9876543210').buf)).toBe(true);
    // With no template yet, such a container makes one (ids of its length can use it).
    clearTemplates();
    store({ ...o, id: 'short-1' }, 'short-1');
    expect(fromTemplate({ ...o, id: 'short-2' }, 'unused')!.spec.hostname).toBe('short-2');
  });

  it('the template holds a frozen copy: the options it was made from can change, and it cannot', () => {
    clearTemplates();
    const env = { A: '1' };
    const o = { rootfs: '/srv/rootfs', args: ['/true'], env };
    store(o, '0123456789abcdef');
    env.A = '2'; // the user's object: not frozen, not shared
    const t = lookupTemplate(templateKey({ rootfs: '/srv/rootfs', args: ['/true'], env: { A: '1' } }))!;
    expect(Object.isFrozen(t.spec.env)).toBe(true);
    expect(t.spec.env).toContain('A=1');
    expect(lookupTemplate(templateKey(o))).toBeUndefined(); // A=2 is another key
  });
});
