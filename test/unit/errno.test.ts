import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERRNO_ALIASES, ERRNO_TABLE } from '../../src-ts/errno.js';
import { ContainerError, errnoMessage, errnoName, errnoNumber } from '../../src-ts/errors.js';

const HEADERS = ['/usr/include/asm-generic/errno-base.h', '/usr/include/asm-generic/errno.h'];
const haveHeaders = HEADERS.every((h) => existsSync(h));

/** `#define ENAME 12` and `#define EALIAS ENAME` lines of the kernel's uapi headers. */
function headerDefines(): Map<string, number> {
  const defs = new Map<string, number>();
  for (const h of HEADERS)
    for (const m of readFileSync(h, 'utf8').matchAll(/^#define\s+(E[A-Z0-9]+)\s+(\w+)/gm)) {
      const value = /^\d+$/.test(m[2]!) ? Number(m[2]) : defs.get(m[2]!);
      if (value === undefined) throw new Error(`${m[1]} is defined as ${m[2]}, which is not defined before it`);
      defs.set(m[1]!, value);
    }
  return defs;
}

describe('the errno table', () => {
  it.skipIf(!haveHeaders)(
    'has every errno of asm-generic/errno-base.h and errno.h, with the same number (skipped without the kernel headers, package linux-libc-dev)',
    () => {
      const defs = headerDefines();
      expect(defs.size).toBeGreaterThan(130);
      for (const [name, n] of defs) expect(errnoNumber(name), name).toBe(n);
      // And nothing the headers lack: every number of the table is one of theirs.
      const numbers = new Set(defs.values());
      for (const [n, name] of ERRNO_TABLE) expect(numbers.has(n), `${name} ${n}`).toBe(true);
    },
  );

  it('names each number once, and every alias points at a number of the table', () => {
    const numbers = ERRNO_TABLE.map((e) => e[0]);
    expect(new Set(numbers).size).toBe(numbers.length);
    const names = ERRNO_TABLE.map((e) => e[1]);
    expect(new Set(names).size).toBe(names.length);
    for (const [alias, n] of Object.entries(ERRNO_ALIASES)) {
      expect(numbers).toContain(n);
      expect(names).not.toContain(alias);
    }
  });

  it('knows what Node lacks: ENOEXEC is 8, "Exec format error", not E8', () => {
    expect(errnoName(8)).toBe('ENOEXEC');
    expect(errnoMessage(8)).toBe('Exec format error');
    expect(errnoNumber('ENOEXEC')).toBe(8);
    expect(errnoName(133)).toBe('EHWPOISON');
    expect(errnoName(72)).toBe('EMULTIHOP');
  });

  it('aliases: EWOULDBLOCK is EAGAIN, EDEADLOCK is EDEADLK; 95 keeps the name ENOTSUP', () => {
    expect([errnoNumber('EWOULDBLOCK'), errnoName(11)]).toEqual([11, 'EAGAIN']);
    expect([errnoNumber('EDEADLOCK'), errnoName(35)]).toEqual([35, 'EDEADLK']);
    expect([errnoNumber('EOPNOTSUPP'), errnoNumber('ENOTSUP'), errnoName(95)]).toEqual([95, 95, 'ENOTSUP']);
  });

  it('agrees with Node on the names Node has for Linux errnos (libuv adds its own below -3000)', async () => {
    const { getSystemErrorMap } = await import('node:util');
    for (const [neg, [name]] of getSystemErrorMap()) if (neg < 0 && neg >= -133) expect(errnoName(-neg), name).toBe(name);
  });
});

describe('ContainerError ids', () => {
  it('has one name for the container id: containerId (no id field)', () => {
    const e = new ContainerError('x', { code: 'ERR_CONTAINER_EXIT', containerId: 'abc' });
    expect(e.containerId).toBe('abc');
    expect('id' in e).toBe(false);
  });
});
