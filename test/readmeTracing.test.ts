/**
 * README "Tracing and metrics": its `tracing.ts`, run as a user would, in a process of its own
 * (the built packages, the real SDK and console exporters): one add and one handler call, then the
 * file's `shutdown()`. Both spans print in one trace, and the counts print too. The README's first
 * version exported only `unregister`: a short program printed nothing (spans leave in batches every
 * 5 s, metrics every 60 s) and had no handle to shut the SDK down (found by an outside trial).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { ROOT } from './support/cli.js';
import { sharedUrl, uniqueName } from './support/clients.js';

/** The README's ts block that starts with `// tracing.ts`. */
function readmeTracing(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const block = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)]
    .map((m) => m[1] as string)
    .find((b) => b.startsWith('// tracing.ts'));
  if (block === undefined) throw new Error('README has no ts block starting with "// tracing.ts"');
  return block;
}

describe('README tracing setup', () => {
  it('prints the send and process spans of one trace, and the counts, once shut down', { timeout: 60_000 }, async () => {
    const js = ts.transpileModule(readmeTracing(), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    }).outputText;
    // Inside the repository, so that the packages resolve as from an application's node_modules.
    const dir = join(ROOT, `.readme-tracing-${process.pid}`);
    mkdirSync(dir, { recursive: true });
    try {
      writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
      writeFileSync(join(dir, 'tracing.mjs'), js);
      const name = uniqueName('readme-tracing');
      writeFileSync(
        join(dir, 'main.mjs'),
        `import { shutdown } from './tracing.mjs';
import { Redis } from 'ioredis';
import { Stream } from 'pulse-streaming';
const redis = new Redis(${JSON.stringify(sharedUrl())});
const stream = new Stream(${JSON.stringify(name)}, redis);
const sink = await stream.newSink('billing', { startAt: 'oldest' });
await stream.add('order.created', '{"id":1}');
const done = new AbortController();
await sink.process(async () => done.abort(), { signal: done.signal });
await sink.close();
await stream.destroy();
await shutdown();
redis.disconnect();
`,
      );
      const { stdout } = await promisify(execFile)(process.execPath, ['main.mjs'], { cwd: dir, timeout: 30_000 });
      // ConsoleSpanExporter prints each span's traceId before its name.
      const spans = [...stdout.matchAll(/traceId: '([0-9a-f]{32})',[\s\S]*?name: '([^']+)'/g)].map((m) => ({
        traceId: m[1],
        name: m[2],
      }));
      const send = spans.find((s) => s.name === `send ${name}`);
      const processed = spans.find((s) => s.name === `process ${name}`);
      expect(send, stdout).toBeDefined();
      expect(processed, stdout).toBeDefined();
      expect(processed?.traceId).toBe(send?.traceId);
      expect(stdout).toContain("name: 'messaging.client.sent.messages'");
      expect(stdout).toContain("name: 'messaging.client.consumed.messages'");
      expect(stdout).toContain("name: 'messaging.process.duration'");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
