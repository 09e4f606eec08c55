import { InvalidArgumentError } from '../errors.js';

const FORBIDDEN = /[ \0*?[\]]/;

/** Stream and sink names: 1 to 512 characters, none of space, NUL, `*`, `?`, `[`, `]`. */
export function checkName(kind: string, name: unknown): string {
  if (typeof name !== 'string') throw new InvalidArgumentError(`${kind} name must be a string`);
  if (name.length === 0) throw new InvalidArgumentError(`${kind} name must not be empty`);
  if (name.length > 512) throw new InvalidArgumentError(`${kind} name must be at most 512 characters`);
  if (FORBIDDEN.test(name)) {
    throw new InvalidArgumentError(`${kind} name ${JSON.stringify(name)} must not contain space, NUL, '*', '?', '[' or ']'`);
  }
  return name;
}

/** A whole number >= min, or the default when undefined. */
export function checkInt(option: string, value: unknown, def: number, min: number): number {
  if (value === undefined) return def;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new InvalidArgumentError(`${option} must be an integer >= ${min}, got ${String(value)}`);
  }
  return value;
}

/** An optional whole number >= min. */
export function checkOptionalInt(option: string, value: unknown, min: number): number | undefined {
  return value === undefined ? undefined : checkInt(option, value, 0, min);
}

export function checkBool(option: string, value: unknown, def: boolean): boolean {
  if (value === undefined) return def;
  if (typeof value !== 'boolean') throw new InvalidArgumentError(`${option} must be a boolean`);
  return value;
}

const ID = /^\d+(-\d+)?$/;

/** A Redis stream entry ID (`<ms>-<seq>` or `<ms>`). */
export function checkId(option: string, id: unknown): string {
  if (typeof id !== 'string' || !ID.test(id)) {
    throw new InvalidArgumentError(`${option} must be a stream entry ID like "1700000000000-0", got ${JSON.stringify(id)}`);
  }
  return id;
}
