/**
 * What a propagator other than the W3C one writes into an event's headers,
 * checked before it reaches them. A propagator writes what the request's
 * context holds: a Jaeger-style one writes a `uberctx-<key>` header per
 * baggage entry, and a baggage key an upstream HTTP client sent (`user*id`,
 * or one long enough to pass 64 characters with the prefix) is no header
 * name pulse can store. Written straight into the headers, it failed the
 * add with an InvalidArgumentError for a header the caller never passed,
 * nothing stored. Instrumentation never fails an add: such a header is left
 * out and reported to OpenTelemetry's `diag` logger instead.
 */
import { type Context, defaultTextMapSetter, diag, type TextMapPropagator } from '@opentelemetry/api';
import { headerProblem, MAX_INJECTED_HEADERS, setHeader } from '../internal/headers.js';

/** Distinct refused header names reported to `diag`; past it, one last warning says no more are. */
const MAX_REPORTED = 64;

/** Longest text of a warning, and of a name remembered as reported: a name comes from a request's baggage. */
const MAX_WARNING = 300;

/**
 * The headers a registration's propagator was refused, each reported once
 * (`diag.warn`): a baggage entry every request carries would otherwise log
 * on every add.
 */
export class RefusedHeaders {
  readonly #reported = new Set<string>();
  #silenced = false;

  /** Reports that `name` was left out of an event's headers, because of `problem`, unless already reported. */
  report(name: string, problem: string): void {
    if (this.#silenced) return;
    const seen = name.length > MAX_WARNING ? name.slice(0, MAX_WARNING) : name;
    if (this.#reported.has(seen)) return;
    let text: string;
    if (this.#reported.size >= MAX_REPORTED) {
      this.#silenced = true;
      text = `${MAX_REPORTED} header names of the propagator were left out of events; others will not be reported`;
    } else {
      this.#reported.add(seen);
      text = `the propagator's header is left out of events (the add goes on without it): ${problem}`;
    }
    try {
      diag.warn(`pulse-streaming/otel: ${text.length > MAX_WARNING ? `${text.slice(0, MAX_WARNING)}…` : text}`);
    } catch {
      // A logger that throws: nowhere left to say it, and the add must go on.
    }
  }
}

/**
 * `prop.inject(ctx)` into a carrier of its own, then into `headers` only
 * what the library stores (headers.ts decides: name, value), and at most
 * {@link MAX_INJECTED_HEADERS} names that `headers` did not have (what an
 * add allows instrumentation beyond the caller's headers). The rest is
 * reported through `refused` and left out.
 */
export function injectChecked(
  prop: TextMapPropagator,
  ctx: Context,
  headers: Record<string, string>,
  refused: RefusedHeaders,
): void {
  // No prototype: a propagator writing `__proto__` (a valid header name) sets a field like any other.
  const carrier = Object.create(null) as Record<string, unknown>;
  prop.inject(ctx, carrier, defaultTextMapSetter);
  let added = 0;
  for (const name of Object.keys(carrier)) {
    const value = carrier[name];
    const problem = headerProblem(name, value);
    if (problem !== undefined) {
      refused.report(name, problem);
      continue;
    }
    if (!Object.hasOwn(headers, name)) {
      if (added === MAX_INJECTED_HEADERS) {
        refused.report(name, `header ${name}: instrumentation adds at most ${MAX_INJECTED_HEADERS} headers to an event`);
        continue;
      }
      added++;
    }
    setHeader(headers, name, value as string);
  }
}
