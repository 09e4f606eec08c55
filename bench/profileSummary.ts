/**
 * `node dist-bench/bench/profileSummary.js <file.cpuprofile> [top] [filter]`:
 * the functions with the most self time in a `node --cpu-prof` profile, and
 * the total (self + callees) time of those whose location matches `filter`
 * (default `/src/`: the library).
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

function isCpuProfile(v: unknown): v is CpuProfile {
  return (
    typeof v === 'object' && v !== null && Array.isArray(Reflect.get(v, 'nodes')) && Array.isArray(Reflect.get(v, 'samples'))
  );
}

function label(f: CallFrame): string {
  const file = f.url.replace(/^file:\/\//, '').replace(process.cwd(), '.');
  return `${f.functionName || '(anonymous)'} ${file ? `${file}:${f.lineNumber + 1}` : ''}`.trim();
}

function summarizeProfile(profile: CpuProfile, top: number, filter: string): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    const key = label(node.callFrame);
    self.set(key, (self.get(key) ?? 0) + us);
    // Charge each distinct matching frame on the stack once.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const frame = byId.get(cur)?.callFrame;
      if (!frame?.url.includes(filter)) continue;
      const k = label(frame);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + us);
    }
  }
  const pct = (us: number): string => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
  const rows = (m: Map<string, number>): string[] =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, us]) => `${pct(us)}  ${(us / 1000).toFixed(0).padStart(6)} ms  ${k}`);
  return [
    `total ${(total / 1000).toFixed(0)} ms sampled`,
    '',
    'self time:',
    ...rows(self),
    '',
    `total time of functions in '${filter}':`,
    ...rows(inclusive),
  ].join('\n');
}

const [file, top = '30', filter = '/src/'] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: node dist-bench/bench/profileSummary.js <file.cpuprofile> [top] [filter]\n');
  process.exit(2);
}
const profile: unknown = JSON.parse(readFileSync(file, 'utf8'));
if (!isCpuProfile(profile)) throw new Error(`${file} is not a .cpuprofile`);
process.stdout.write(`${summarizeProfile(profile, Number(top), filter)}\n`);
