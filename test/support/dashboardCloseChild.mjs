// Child for dashboardTailClose.test.ts: argv = url. Serves a dashboard and prints READY; on a line
// on stdin (the parent froze Redis), requests a tail (its reader cannot be created yet), prints
// REQUESTED, then closes the dashboard, the HTTP server and the client, prints CLOSED, and must
// then exit on its own.
import http from 'node:http';
import { Redis } from 'ioredis';
import { Stream } from '../../packages/pulse-streaming/dist/esm/index.js';
import { createDashboard } from '../../packages/pulse-streaming-cli/dist/dashboard/index.js';

const [url] = process.argv.slice(2);
const redis = new Redis(url, { lazyConnect: true });
redis.on('error', () => {});
await redis.connect();
const name = `dashboardClose-${process.pid}`;
await new Stream(name, redis).add('e', 'x');
const dashboard = createDashboard({ redis });
const server = http.createServer(dashboard);
await new Promise((r) => server.listen(0, '127.0.0.1', r));
console.log('READY');
process.stdin.once('data', async () => {
  process.stdin.destroy();
  const req = http.get(`http://127.0.0.1:${server.address().port}/api/tail?name=${name}`, (res) => {
    console.log(`TAIL ${res.statusCode}`);
    res.resume();
    res.on('end', () => console.log('TAIL ENDED'));
  });
  req.on('error', (err) => console.log(`TAIL ERROR ${err.message}`));
  // Let the request reach the handler: it now waits for its reader.
  await new Promise((r) => setTimeout(r, 300));
  console.log('REQUESTED');
  await dashboard.close();
  await new Promise((r) => server.close(r));
  redis.disconnect();
  console.log('CLOSED');
  setTimeout(() => {
    console.log(`LEFT ${JSON.stringify(process.getActiveResourcesInfo())}`);
    process.exit(3);
  }, 8000).unref();
});
