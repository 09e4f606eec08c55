/**
 * The library as a user installs it: `npm pack`, unpacked into a fresh
 * project next to the Redis clients, then compiled by a strict TypeScript app
 * (ESM, CommonJS with node16 resolution and with classic resolution) and run
 * with `import` and `require`. Checks what the tarball holds and what its
 * `.d.ts` lets through (README "Install").
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

const REPO = resolve(import.meta.dirname, '..');
const PKG = join(REPO, 'packages/pulse-streaming');

let app: string;
let files: string[];
let manifest: Record<string, unknown>;

/**
 * Declarations parsed once for all the programs below, keyed by how they are
 * parsed (TypeScript's language service shares them across programs the
 * same way): three `tsc` processes parsed Node's, the clients' and ours
 * again each time, 17 s of the test suite's CPU.
 */
const parsed = new Map<string, ts.SourceFile | undefined>();

/**
 * `tsc <args>` in the app's directory, in this process: its diagnostics,
 * formatted as tsc prints them ('' when none). With `only`, those of the
 * files it accepts (and the program's own): checking all of Node's
 * declarations takes seconds and finds nothing of ours.
 */
function tsc(args: string[], only?: (fileName: string) => boolean): string {
  const cmd = ts.parseCommandLine(args);
  const host = ts.createCompilerHost(cmd.options);
  host.getCurrentDirectory = () => app;
  const parse = host.getSourceFile.bind(host);
  host.getSourceFile = (fileName, how, onError, create) => {
    if (!fileName.includes('/node_modules/')) return parse(fileName, how, onError, create);
    const key = `${fileName}\n${JSON.stringify(how)}`;
    if (!parsed.has(key)) parsed.set(key, parse(fileName, how, onError, create));
    return parsed.get(key);
  };
  const program = ts.createProgram(
    cmd.fileNames.map((f) => join(app, f)),
    cmd.options,
    host,
  );
  const format = { getCanonicalFileName: (f: string) => f, getCurrentDirectory: () => app, getNewLine: () => '\n' };
  const diagnostics = only
    ? [
        ...program.getOptionsDiagnostics(),
        ...program.getGlobalDiagnostics(),
        ...program
          .getSourceFiles()
          .filter((f) => only(f.fileName))
          .flatMap((f) => [...program.getSyntacticDiagnostics(f), ...program.getSemanticDiagnostics(f)]),
      ]
    : ts.getPreEmitDiagnostics(program);
  return ts.formatDiagnostics([...cmd.errors, ...diagnostics], format);
}

function run(cmd: string, args: string[], cwd = app): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

beforeAll(() => {
  app = mkdtempSync(join(tmpdir(), 'pulse-pack-'));
  // npm pack runs prepack (README and LICENSE); the build is `npm test`'s pretest.
  const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', app], { cwd: PKG, encoding: 'utf8' }));
  files = (packed[0].files as Array<{ path: string }>).map((f) => f.path);
  const lib = join(app, 'node_modules/pulse-streaming');
  mkdirSync(lib, { recursive: true });
  execFileSync('tar', ['-xzf', join(app, packed[0].filename), '-C', lib, '--strip-components=1']);
  manifest = JSON.parse(readFileSync(join(lib, 'package.json'), 'utf8'));
  // The user's own dependencies: the Redis clients (and Node's types for tsc).
  for (const dep of ['redis', '@redis', 'ioredis', 'iovalkey', '@types', '@opentelemetry']) {
    symlinkSync(join(REPO, 'node_modules', dep), join(app, 'node_modules', dep), 'dir');
  }
}, 60_000);

afterAll(() => {
  if (app) rmSync(app, { recursive: true, force: true });
});

describe('the packed library', () => {
  it('has no runtime dependencies: the clients and @opentelemetry/api are optional peers', () => {
    expect(manifest.dependencies).toBeUndefined();
    expect(manifest.peerDependenciesMeta).toEqual({
      ioredis: { optional: true },
      redis: { optional: true },
      '@opentelemetry/api': { optional: true },
    });
  });

  it('ships its build, types, README and LICENSE, and no sources, maps or internal declarations', () => {
    expect(files).toContain('LICENSE');
    expect(files).toContain('README.md');
    expect(files).toContain('dist/esm/index.js');
    expect(files).toContain('dist/cjs/index.js');
    expect(files).toContain('dist/esm/index.d.ts');
    expect(
      files.filter((f) => f.startsWith('src/') || f.endsWith('.map') || (f.endsWith('.ts') && f.includes('/internal/'))),
    ).toEqual([]);
    const readme = readFileSync(join(app, 'node_modules/pulse-streaming/README.md'), 'utf8');
    // Links to files that stay in the repository work from the registry page.
    expect(readme).not.toMatch(/\]\((?!https?:|#)[^)]+\)/);
    // Images from the raw file: a blob/ URL is GitHub's HTML page of it, no image on the registry page.
    const images = [...readme.matchAll(/!\[[^\]]*\]\(([^)]+)\)/g)].map((m) => m[1]);
    expect(images.length).toBeGreaterThan(0);
    expect(images.filter((u) => !u?.includes('/raw/main/'))).toEqual([]);
  });

  it('keeps internals out of its declarations', () => {
    const dts = files.filter((f) => f.endsWith('.d.ts'));
    for (const f of dts) {
      const text = readFileSync(join(app, 'node_modules/pulse-streaming', f), 'utf8');
      expect(text, f).not.toMatch(/@internal|\bdriver\b|static create|from '\.\/internal\//);
    }
  });

  it('compiles a strict TypeScript app (ESM and CommonJS) and rejects what the types forbid', () => {
    const body = (imp: string) => `${imp}
import { createClient, createCluster, createSentinel } from 'redis';
import { Redis } from 'ioredis';
async function main(): Promise<void> {
  const redis = createClient();
  const s = new Stream('orders', redis);
  new Stream('orders', new Redis({ lazyConnect: true }));
  new Stream('orders', createCluster({ rootNodes: [] }));
  new Stream('orders', redis.withTypeMapping({}));
  // @ts-expect-error a node-redis Sentinel's sendCommand takes (isReadonly, args): refused
  new Stream('x', createSentinel({ name: 'm', sentinelRootNodes: [] }));
  const id: string = await s.add('created', 'payload');
  // @ts-expect-error only onlyIfStreamExists can resolve to undefined
  const maybe: string = await s.add('created', 'payload', { onlyIfStreamExists: true });
  const flag: boolean = Math.random() > 0.5;
  // @ts-expect-error a boolean that may be true can resolve to undefined too
  const maybe2: string = await s.add('created', 'payload', { onlyIfStreamExists: flag });
  // @ts-expect-error an arbitrary object is not a Redis client
  new Stream('x', {});
  // @ts-expect-error a Map is not a Redis client
  new Stream('x', new Map());
  // @ts-expect-error two of an ioredis client's methods are not a client (the library calls on and pipeline too)
  new Stream('x', { callBuffer() {}, duplicate() {} });
  // @ts-expect-error two of a node-redis client's methods are not a client (the library calls on too)
  new Stream('x', { sendCommand(_a: string[]) {}, duplicate() {} });
  // @ts-expect-error internals are not part of the API
  s.key;
  // @ts-expect-error internals are not part of the API
  s.driver;
  // @ts-expect-error internals are not part of the API
  s.logger;
  // @ts-expect-error sinks are created by stream.newSink
  Sink.create;
  const sink: Sink = await s.newSink('billing');
  void [id, maybe, maybe2, sink];
}
void main;
`;
    writeFileSync(join(app, 'app.mts'), body("import { Sink, Stream } from 'pulse-streaming';"));
    // CommonJS TypeScript: `import x = require()` compiles to require('pulse-streaming').
    writeFileSync(
      join(app, 'app.cts'),
      body("import pulse = require('pulse-streaming');\nimport Stream = pulse.Stream;\nimport Sink = pulse.Sink;"),
    );
    // The clients' own declarations are theirs to check (and slow): skipLibCheck for the apps, and
    // a second program that checks ours with skipLibCheck off.
    const strict = ['--strict', '--noEmit', '--skipLibCheck', '--types', 'node', '--target', 'es2022'];
    expect(tsc([...strict, '--module', 'nodenext', 'app.mts', 'app.cts'])).toBe('');
    // A classic CommonJS project (module commonjs, node10 resolution) reads the top-level "types".
    // Its subpaths too: node10 knows no "exports", "typesVersions" maps them.
    writeFileSync(
      join(app, 'classic.ts'),
      body(
        "import { Sink, Stream } from 'pulse-streaming';\nimport { streamKey } from 'pulse-streaming/keys';\nimport { registerOpenTelemetry } from 'pulse-streaming/otel';\nvoid [streamKey, registerOpenTelemetry];",
      ),
    );
    const classic = tsc([...strict, '--module', 'commonjs', '--moduleResolution', 'node10', '--esModuleInterop', 'classic.ts']);
    expect(classic).toBe('');
    const ours =
      "import * as pulse from 'pulse-streaming';\nimport * as keys from 'pulse-streaming/keys';\nimport * as otel from 'pulse-streaming/otel';\nvoid [pulse, keys, otel];\n";
    writeFileSync(join(app, 'lib.mts'), ours);
    writeFileSync(join(app, 'lib.cts'), ours);
    const libCheck = ['--strict', '--noEmit', '--types', 'node', '--target', 'es2022', '--module', 'nodenext'];
    const isOurs = (f: string): boolean => !f.includes('/node_modules/') || f.includes('/node_modules/pulse-streaming/');
    expect(tsc([...libCheck, 'lib.mts', 'lib.cts'], isOurs)).toBe('');
  }, 60_000);

  it('works with require() and import, on a real Redis, without warnings', () => {
    const url = inject('redisUrl');
    const work = (load: string) => `${load}
const { createClient } = require_('redis');
(async () => {
  const redis = createClient({ url: ${JSON.stringify(url)} });
  await redis.connect();
  const s = new Stream('pack-' + process.pid + '-' + Math.random().toString(36).slice(2), redis);
  const reader = await s.newReader({ startAt: 'oldest' });
  const id = await s.add('created', 'hello');
  const sub = reader.subscribe();
  const ev = (await sub.next()).value;
  console.log(JSON.stringify({ ok: ev.id === id && ev.text() === 'hello', keys: typeof streamKey, otel: typeof registerOpenTelemetry }));
  await reader.close();
  await s.destroy();
  await redis.close();
})().catch((e) => { console.error(e); process.exit(1); });
`;
    writeFileSync(
      join(app, 'cjs.cjs'),
      work(
        "const { Stream } = require('pulse-streaming');\nconst { streamKey } = require('pulse-streaming/keys');\nconst { registerOpenTelemetry } = require('pulse-streaming/otel');\nconst require_ = require;",
      ),
    );
    writeFileSync(
      join(app, 'esm.mjs'),
      work(
        "import { Stream } from 'pulse-streaming';\nimport { streamKey } from 'pulse-streaming/keys';\nimport { registerOpenTelemetry } from 'pulse-streaming/otel';\nimport { createRequire } from 'node:module';\nconst require_ = createRequire(import.meta.url);",
      ),
    );
    for (const file of ['cjs.cjs', 'esm.mjs']) {
      const r = run(process.execPath, [file]);
      expect(r.out, file).toBe('{"ok":true,"keys":"function","otel":"function"}\n');
      expect(r.status, file).toBe(0);
    }
  }, 30_000);
});
