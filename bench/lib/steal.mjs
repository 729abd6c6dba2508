// The share of the machine's CPU time that its host took (steal, /proc/stat): on a shared VM the
// numbers of a run move with it, so the benches print it beside their tables.
import fs from 'node:fs';

/** All CPUs' time so far: total, and stolen. */
export function cpuTimes() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
  return { total: f.reduce((a, b) => a + b, 0), steal: f[7] ?? 0 };
}

/** Stolen between two readings, in % of the CPU time (one decimal). */
export function stealPct(a, b) {
  const total = b.total - a.total;
  return total > 0 ? Math.round((1000 * (b.steal - a.steal)) / total) / 10 : 0;
}
