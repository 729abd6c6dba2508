/**
 * The child's allow-list, enforced: the objects of src-native/child (built on their own as the
 * static library sbx_child, -ffreestanding) may call nothing outside themselves but the memset and
 * memcpy a compiler emits for struct copies (stateless, resolved at load with -z now). A libc call
 * there (malloc, printf, errno, a libc syscall wrapper, the stack protector's handler) fails this.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const objDir = `${root}build/Release/obj.target/sbx_child/src-native/child`;
const COMPILER_EMITTED = new Set(['memset', 'memcpy', 'memmove']);

function symbols(objects: string[], flag: '--undefined-only' | '--defined-only'): Set<string> {
  const out = execFileSync('nm', [flag, '--format=posix', ...objects], { encoding: 'utf8' });
  return new Set(
    out
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter((f) => f.length >= 2 && !f[0]!.endsWith(':') && !f[0]!.endsWith(']:'))
      .map((f) => f[0]!),
  );
}

/** What the objects call outside themselves, beyond what a compiler emits. */
function foreignCalls(objects: string[]): string[] {
  const defined = symbols(objects, '--defined-only');
  return [...symbols(objects, '--undefined-only')].filter((s) => !defined.has(s) && !COMPILER_EMITTED.has(s)).sort();
}

describe('the child is libc-free', () => {
  const objects = existsSync(objDir) ? readdirSync(objDir).filter((f) => f.endsWith('.o')).map((f) => `${objDir}/${f}`) : [];

  it('every source of src-native/child is built into sbx_child', () => {
    const sources = readdirSync(`${root}src-native/child`).filter((f) => f.endsWith('.c'));
    expect(objects.map((o) => o.split('/').pop()!.replace(/\.o$/, '.c')).sort()).toEqual(sources.sort());
  });

  it('its objects call nothing outside themselves', () => {
    expect(objects.length).toBeGreaterThan(0);
    expect(foreignCalls(objects)).toEqual([]);
  });

  it('the check finds a libc call (a child file calling malloc and the errno of a libc wrapper)', () => {
    const dir = mkdtempSync(`${tmpdir()}/sbx-libc-`);
    try {
      writeFileSync(`${dir}/bad.c`, '#include <stdlib.h>\n#include <unistd.h>\nint f(void) { void *p = malloc(8); return p ? (int)write(1, "x", 1) : 0; }\n');
      execFileSync('gcc', ['-O2', '-ffreestanding', '-fno-builtin', '-c', `${dir}/bad.c`, '-o', `${dir}/bad.o`]);
      expect(foreignCalls([...objects, `${dir}/bad.o`])).toEqual(['malloc', 'write']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
