/**
 * `pulse-streaming-cli/dashboard`: the web dashboard of pulse streams as a
 * Node request handler, to mount in your own server.
 *
 * ```ts
 * import { createServer } from 'node:http';
 * import { Redis } from 'ioredis';
 * import { createDashboard } from 'pulse-streaming-cli/dashboard';
 *
 * createServer(createDashboard({ redis: new Redis() })).listen(7400, '127.0.0.1');
 * ```
 *
 * @packageDocumentation
 */
export { createDashboard, type DashboardHandler, type DashboardOptions } from './handler.js';
