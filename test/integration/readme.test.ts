/**
 * The README's API section runs as written: each code block is run by Node (a ts block once
 * TypeScript has type-checked and compiled it), with a busybox-static rootfs for the placeholder
 * path, and prints what its `// → …` comments say, in order ('…' stands for any text).
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDir, busyboxRootfs, busyboxSkip, removeRootfs, repoRoot } from './helpers.js';

const PLACEHOLDER = '/abs/path/to/rootfs';

function apiBlocks(): { lang: 'js' | 'ts'; code: string }[] {
  const readme = readFileSync(`${repoRoot}README.md`, 'utf8');
  const section = readme.slice(readme.indexOf('\n## The API\n'), readme.indexOf('\n## ', readme.indexOf('\n## The API\n') + 1));
  return [...section.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map((m) => {
    if (m[1] !== 'js' && m[1] !== 'ts') throw new Error(`README API section: a \`\`\`${m[1]} block (only js and ts are run)`);
    return { lang: m[1], code: m[2]! };
  });
}

/** The `// → …` comments of a block, as patterns for its output lines. */
function expectedLines(code: string): RegExp[] {
  return [...code.matchAll(/\/\/ → (.*)$/gm)].map(
    (m) => new RegExp(`^${m[1]!.split('…').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`),
  );
}

const blocks = apiBlocks();

describe.skipIf(busyboxSkip !== null)(`the README's API section (${busyboxSkip ?? 'busybox-static rootfs, as root'})`, () => {
  let rootfs: string;
  beforeAll(() => {
    rootfs = busyboxRootfs();
  });
  afterAll(() => removeRootfs(rootfs));

  it('has js and ts examples, each with an output to check', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(3);
    expect(blocks.some((b) => b.lang === 'ts')).toBe(true);
    for (const b of blocks) expect(b.code).toContain(PLACEHOLDER);
    for (const b of blocks) expect(expectedLines(b.code).length).toBeGreaterThan(0);
  });

  it("says that stdio is 'pipe' by default, what that blocks, and the remedies (read, 'ignore', delete())", () => {
    const readme = readFileSync(`${repoRoot}README.md`, 'utf8');
    const api = readme.slice(readme.indexOf('\n## The API\n'), readme.indexOf('\n## Speed'));
    expect(api).toContain("**stdio is `'pipe'` by default.**");
    for (const words of ['nobody reads', 'Read the streams', "`stdio: 'ignore'`", 'keeps Node\'s event loop alive', '`delete()` every container'])
      expect(api).toContain(words);
  });

  it('the ts blocks type-check against the package (strict)', () => {
    const files = blocks.flatMap((b, i) => (b.lang === 'ts' ? [`${buildDir}readme-${i}.ts`] : []));
    blocks.forEach((b, i) => b.lang === 'ts' && writeFileSync(`${buildDir}readme-${i}.ts`, b.code));
    const program = ts.createProgram(files, {
      strict: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      lib: ['lib.es2022.d.ts', 'lib.esnext.disposable.d.ts'],
      types: ['node'],
      skipLibCheck: true,
    });
    const problems = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    expect(problems).toEqual([]);
  });

  it.each(blocks.map((b, i) => [i, b] as const))('block %i runs and prints what its comments say', async (i, block) => {
    const code = block.code.replaceAll(PLACEHOLDER, rootfs);
    const js =
      block.lang === 'ts'
        ? ts.transpileModule(code, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext } }).outputText
        : code;
    // In the package's tree, so that `import … from 'scratchbox'` finds the package itself.
    const file = `${buildDir}readme-${i}.mjs`;
    writeFileSync(file, js);
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [file], { timeout: 20_000 });
    expect(stderr).toBe('');
    const lines = stdout.replace(/\n$/, '').split('\n');
    const want = expectedLines(block.code);
    expect(lines.length, stdout).toBe(want.length);
    lines.forEach((line, j) => expect(line).toMatch(want[j]!));
  });
});
