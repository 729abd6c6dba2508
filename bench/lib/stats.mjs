// Small statistics helpers for the bench. All inputs and outputs are plain
// numbers; callers decide the unit (the bench uses milliseconds throughout).

/** Percentile by linear interpolation between closest ranks (p in 0..100). */
export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  if (sorted.length === 1) return sorted[0];
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
}

/** Summary of a sample: n, min, p50, p90, p99, max, mean, stdev. */
export function summarize(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  const n = v.length;
  if (n === 0) return { n: 0, min: NaN, p50: NaN, p90: NaN, p99: NaN, max: NaN, mean: NaN, stdev: NaN };
  const mean = v.reduce((s, x) => s + x, 0) / n;
  const variance = n > 1 ? v.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1) : 0;
  return {
    n,
    min: v[0],
    p50: percentile(v, 50),
    p90: percentile(v, 90),
    p99: percentile(v, 99),
    max: v[n - 1],
    mean,
    stdev: Math.sqrt(variance),
  };
}

/** Median of an unsorted array. */
export function median(values) {
  return percentile([...values].sort((a, b) => a - b), 50);
}

/** Rounds to a sensible number of significant digits for tables. */
export function fmt(x, digits = 3) {
  if (x === null || x === undefined || !Number.isFinite(x)) return '—';
  if (x === 0) return '0';
  const mag = Math.floor(Math.log10(Math.abs(x)));
  const decimals = Math.max(0, digits - 1 - mag);
  return x.toFixed(Math.min(decimals, 3));
}

/** "2.3×" style ratio, or "—". */
export function ratio(a, b) {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return '—';
  const r = a / b;
  return `${r >= 10 ? r.toFixed(0) : r.toFixed(2)}×`;
}

/**
 * The order of round `round`: a permutation of `items` from a generator seeded by the round's
 * number (so every run uses the same orders). A rotation is not enough: it changes only which
 * runner starts a round, and every runner keeps its predecessor. What a batch leaves behind (a
 * runtime's teardown still running in the kernel, the addon's pools drained or refilled) then
 * falls on the same runner every round. With scratchbox's privileged row always right after its
 * default row, the defaults' paired cost read ~0.1 ms; with the two swapped, ~0.3 ms; shuffled,
 * ~0.2 (2026-12-01).
 */
export function roundOrder(items, round) {
  let s = Math.imul(round + 1, 0x9e3779b1) >>> 0;
  const random = () => {
    // mulberry32
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
