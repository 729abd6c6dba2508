/**
 * Unknown keys in options are mistakes (a typo, or an option scratchbox does not have yet): each
 * object of the options has one table of the keys it knows, and anything else is rejected.
 */
import { invalid } from '../errors.js';

/** The keys an options object may have. `satisfies KeyTable<T>` makes the compiler hold it to T. */
export type KeyTable<T> = { readonly [K in keyof Required<T>]: true };

/** The known key a mistyped one most resembles, or undefined when none is close. */
export function closest(key: string, known: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(key.length / 3)) + 1;
  for (const k of known) {
    const d = k.toLowerCase() === lower ? 0 : editDistance(lower, k.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best;
}

/** Levenshtein distance, with a swap of two neighbours counted as one edit (hostnmae). */
function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    rows.push([i]);
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        rows[0]!.push(j);
        continue;
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      rows[i]!.push(d);
    }
  }
  return rows[a.length]![b.length]!;
}

/**
 * Throws EINVAL (stage 'validate') for the first own key of `obj` that `known` lacks; `at` is
 * the object's place in the options ('' for the top level, 'user', 'mounts[2]').
 */
export function checkKeys(obj: object, known: object, at: string, what = 'option'): void {
  for (const key of Object.keys(obj)) {
    if (Object.hasOwn(known, key)) continue;
    const near = closest(key, Object.keys(known));
    const option = at ? `${at}.${key}` : key;
    throw invalid(option, `unknown ${what}${near ? ` (did you mean '${near}'?)` : ''}; known: ${Object.keys(known).join(', ')}`);
  }
}
