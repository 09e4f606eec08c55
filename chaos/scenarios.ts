/**
 * The fault scenarios of issues 4 and 13. Each has a short profile (seconds, part of
 * `npm test`) and a full one (`npm run chaos`, the sizes), and adds
 * its own checks to the shared ones in run.ts.
 */
import {
  clientKill,
  redisDownShortGrace,
  redisPause1s,
  redisPause3Grace,
  redisRestartKill,
  redisRestartTerm,
} from './connectionFaults.js';
import { kill9, stopConsumer } from './consumerFaults.js';
import { backpressure, badInput, maxLenTrimming, maxLenTrimmingNack, poison } from './dataFaults.js';
import { burstBeyondMaxLen, ttlExpiryReplay, xdelLive } from './lossScenarios.js';
import { orderRestartFlush, orderSlotMigration } from './orderScenarios.js';
import { pauseResume } from './pauseScenarios.js';
import { type ScenarioDef, withNodeRedis } from './run.js';
import { slowHandlers } from './slowScenarios.js';

/** The short run (`npm test`) and the full run both run these. */
export const SCENARIOS: ScenarioDef[] = [
  kill9,
  stopConsumer,
  redisPause1s,
  redisPause3Grace,
  redisRestartTerm,
  redisRestartKill,
  redisDownShortGrace,
  clientKill,
  maxLenTrimming,
  maxLenTrimmingNack,
  poison,
  backpressure,
  badInput,
];

/**
 * Issue 13: the delivery contract under ordinary slowness, restarts and
 * entries that disappear. Both runs run these too; their checks are the
 * ledger's (ledger.ts), with no time limit, so the short run (`npm test`)
 * runs them at the same time as each other.
 */
export const CONTRACT_SCENARIOS: ScenarioDef[] = [
  slowHandlers,
  orderRestartFlush,
  xdelLive,
  burstBeyondMaxLen,
  ttlExpiryReplay,
  pauseResume,
];

/** Only the full run adds these: the connection faults again, with node-redis in the consumers. */
export const FULL_ONLY: ScenarioDef[] = [...[kill9, redisRestartKill, clientKill, poison].map(withNodeRedis), orderSlotMigration];
