/**
 * The README's TypeScript examples compile under the repository's strict settings
 * (tsconfig.base.json: strict, noUnusedLocals, noUncheckedIndexedAccess, ...), each with only the
 * declarations its surrounding text implies (a `redis` client, a `stream`, a `sink`, the user's own
 * `charge`, `db`, `bill`, `payload`, `order`). The dashboard's four mounts are one block each, with
 * their imports (they were one block of four apps, which did not compile as pasted: redeclared
 * `app`, missing imports). A new ts block in the README needs its entry in PRELUDE
 * (by its index among the ts blocks), or it is not compiled: the count check below says so.
 * (The "Typed events" example imported DecodeError and never used it: TS6133.)
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './support/cli.js';

const REDIS = "import { Redis } from 'ioredis';\nconst redis = new Redis();\n";
const STREAM = `${REDIS}import { Stream } from 'pulse-streaming';\nconst stream = new Stream('orders', redis);\n`;
/** What each block (by index among the ts blocks) needs declared around it. */
const PRELUDE: Record<number, string> = {
  0: '',
  1: `${STREAM}declare function charge(x: unknown): Promise<void>;\n`,
  2: STREAM,
  3: STREAM,
  4: REDIS,
  5: `${REDIS}import { Stream } from 'pulse-streaming';\ntype OrderEvents = { 'order.created': { id: number }; 'order.paid': { id: number; cents: number } };\nconst orders = new Stream<OrderEvents>('orders', redis, { codec: 'json' });\nconst sink = await orders.newSink('billing');\nconst controller = new AbortController();\ndeclare const db: { insertMany(x: unknown[]): Promise<void> };\n`,
  6: `${STREAM}const payload = 'x';\nconst sink = await stream.newSink('billing');\n`,
  7: `${REDIS}import { Stream } from 'pulse-streaming';\nconst payload = 'x';\nconst order = { id: 1 };\n`,
  8: '',
  9: `${STREAM}const sink = await stream.newSink('billing');\ndeclare function bill(x: unknown): Promise<void>;\n`,
  // The dashboard mounted four ways (test/dashboardMount.test.ts runs them): node:http, Express, Fastify, Hono.
  10: REDIS,
  11: REDIS,
  12: REDIS,
  13: REDIS,
};

describe('README TypeScript examples', () => {
  it('each compiles under the strict settings of tsconfig.base.json', { timeout: 60_000 }, () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] as string);
    const dir = join(ROOT, `.readme-examples-${process.pid}`);
    mkdirSync(dir, { recursive: true });
    try {
      writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
      writeFileSync(
        join(dir, 'tsconfig.json'),
        JSON.stringify({
          extends: '../tsconfig.base.json',
          compilerOptions: { noEmit: true, declaration: false, declarationMap: false, types: ['node'] },
          include: ['*.ts'],
        }),
      );
      const files: string[] = [];
      blocks.forEach((code, i) => {
        if (!(i in PRELUDE)) return;
        const lines = code.split('\n');
        const imports = lines.filter((l) => l.startsWith('import '));
        const rest = lines.filter((l) => !l.startsWith('import '));
        const file = `block${i}.ts`;
        writeFileSync(join(dir, file), `${imports.join('\n')}\n${PRELUDE[i]}${rest.join('\n')}\nexport {};\n`);
        files.push(file);
      });
      // Every ts block has its PRELUDE: a block added needs one.
      expect(blocks.length, 'README ts blocks: give a new one its PRELUDE entry').toBe(Object.keys(PRELUDE).length);
      expect(files.length).toBe(Object.keys(PRELUDE).length);
      let out = '';
      try {
        execFileSync(join(ROOT, 'node_modules/.bin/tsc'), ['-p', join(dir, 'tsconfig.json')], { stdio: 'pipe' });
      } catch (err) {
        out = String((err as { stdout?: Buffer }).stdout ?? err);
      }
      expect(out).toBe('');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
