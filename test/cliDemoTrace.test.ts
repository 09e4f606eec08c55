/**
 * `demo --trace` of the real CLI binary: the producer's `send` spans and the
 * consumer processes' `process` spans come back as one trace per event (the
 * consumers are other processes: their spans travel back over the demo's
 * IPC channel), printed as waterfalls and written to a JSON file.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { buildCli, cli } from './support/cli.js';

beforeAll(buildCli, 120_000);

interface Span {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: string;
  process: string;
  pid: number;
  durationMs: number;
  attributes: Record<string, unknown>;
}

const dir = mkdtempSync(join(tmpdir(), 'pulse-demo-trace-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.concurrent('CLI demo --trace', () => {
  it('writes send and process spans of one trace per event, parent and child across processes, and prints a waterfall', async ({
    expect,
  }) => {
    const file = join(dir, 'spans.json');
    const r = await cli(['demo', '--duration', '2', '--rate', '50', '--json', `--trace=${file}`], {
      embedded: true,
      timeoutMs: 60_000,
    });
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout) as { published: number; lost: number; trace: { traces: number; spans: number } };
    expect(summary.lost).toBe(0);
    const spans = JSON.parse(readFileSync(file, 'utf8')) as Span[];
    expect(summary.trace).toEqual({ traces: summary.published, spans: spans.length, file });

    const sends = spans.filter((s) => s.kind === 'producer');
    const processes = spans.filter((s) => s.kind === 'consumer');
    // A short demo samples every event: one send span each, and a process span for each handling.
    expect(sends).toHaveLength(summary.published);
    expect(processes.length).toBeGreaterThanOrEqual(summary.published);
    const stream = sends[0]?.attributes['messaging.destination.name'];
    for (const p of processes) {
      const send = sends.find((s) => s.spanId === p.parentSpanId);
      expect(send, `parent of ${p.spanId}`).toBeDefined();
      expect(p.traceId).toBe(send?.traceId);
      expect(p.name).toBe(`process ${stream}`);
      expect(p.process).toMatch(/^consumer-\d$/);
      expect(p.pid).not.toBe(send?.pid);
      expect(p.attributes).toMatchObject({
        'messaging.system': 'redis',
        'messaging.consumer.group.name': 'demo-workers',
        'messaging.message.id': send?.attributes['messaging.message.id'],
      });
    }
    expect(new Set(processes.map((p) => p.pid)).size).toBeGreaterThan(1);
    expect(sends.every((s) => s.name === `send ${stream}` && s.process === 'producer')).toBe(true);

    // The waterfall on stderr (stdout is the JSON summary): a send span and its process span, in a trace shown.
    expect(r.stderr).toMatch(new RegExp(`traces +${summary.published} sampled traces, \\d+ spans; all written to `));
    expect(r.stderr).toMatch(
      /trace [0-9a-f]{32} {2}event \d+-\d+\n.*\n {2}send +producer \d+ +█+ +[\d.]+ ms\n {2}└─ process +consumer-\d \d+ +█+ +[\d.]+ ms {2}delivery \d/,
    );
  }, 90_000);

  it('refuses --trace with an empty file name, before it starts anything', async ({ expect }) => {
    const r = await cli(['demo', '--trace='], { embedded: true, timeoutMs: 30_000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--trace takes a file name/);
  }, 60_000);
});
