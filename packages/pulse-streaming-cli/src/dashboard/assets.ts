/**
 * The dashboard's front end, built by `ui/build.mjs` into the package's
 * `dist/dashboard-ui/` (index.html, app.js, app.css and their gzipped
 * copies). `../../dist/dashboard-ui/` names that folder both from the built
 * `dist/dashboard/` and from `src/dashboard/` (tests run the sources);
 * `./dashboard-ui/` names it from the bundled command (a chunk in `dist/`).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';

/** One file of the front end, held in memory. */
export interface Asset {
  readonly type: string;
  readonly body: Buffer;
  readonly gzip: Buffer | undefined;
  readonly etag: string;
}

const PLACES = [new URL('../../dist/dashboard-ui/', import.meta.url), new URL('./dashboard-ui/', import.meta.url)] as const;
const DIR = PLACES.find((dir) => existsSync(new URL('index.html', dir))) ?? PLACES[0];

const TYPES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};

let loaded: Map<string, Asset> | undefined;

function read(file: string): Buffer | undefined {
  try {
    return readFileSync(new URL(file, DIR));
  } catch {
    return undefined;
  }
}

/**
 * The front-end file `name` (`index.html`, `app.js`, `app.css`), or undefined for any other name.
 * @throws Error when the front end was not built.
 */
export function asset(name: string): Asset | undefined {
  if (loaded === undefined) {
    const files = new Map<string, Asset>();
    for (const [file, type] of Object.entries(TYPES)) {
      const body = read(file);
      if (body === undefined) {
        throw new Error(`the dashboard's front end is not built (${new URL(file, DIR).pathname} is missing): run npm run build`);
      }
      const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
      files.set(file, { type, body, gzip: read(`${file}.gz`), etag });
    }
    loaded = files;
  }
  return loaded.get(name);
}
