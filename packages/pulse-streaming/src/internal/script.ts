import { createHash } from 'node:crypto';

/** A Lua script sent by SHA, loaded on `NOSCRIPT`. */
export class Script {
  readonly sha: string;
  constructor(
    readonly name: string,
    readonly source: string,
  ) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }
}
