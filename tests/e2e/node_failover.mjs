// A node of a pool stops under a live page. Alice joins through node 1, which
// serves the conference; Bob joins through node 2 and is sent to node 1. Then
// node 1 stops (the Rust test does it when this script prints `STOP-NODE`,
// and answers by creating the file STOPPED): Bob's page finds by itself,
// through node 2, that node 2 serves the conference now, reconnects there,
// and is back in, with Alice shown as gone.
//
//   node node_failover.mjs LINK_ON_NODE_1 LINK_ON_NODE_2 STOPPED_FILE

import { existsSync } from 'node:fs';

import { fail, joinAs, log, poll, run, waitFor } from './lib.mjs';

const [linkA, linkB, stopped] = process.argv.slice(2);
if (!linkA || !linkB || !stopped) {
  console.error('usage: node node_failover.mjs LINK_ON_NODE_1 LINK_ON_NODE_2 STOPPED_FILE');
  process.exit(2);
}

run('node_failover', 60_000, async (h) => {
  const { page: a } = await h.open('Alice');
  const aId = await joinAs(a, linkA, 'Alice');
  const { page: b } = await h.open('Bob');
  const bId = await joinAs(b, linkB, 'Bob');
  await waitFor(b, 'Bob sees Alice', ([id]) => window.confgate.members.has(id), [aId], 5000);
  const before = await b.evaluate(() => window.confgate.socketUrl);
  if (new URL(before).host !== new URL(linkA).host) {
    fail(`Bob's WebSocket is on ${before}, not on node 1 (${new URL(linkA).host})`);
  }
  log(`Bob (${bId}) joined through ${new URL(linkB).host}, WebSocket on ${new URL(before).host}`);

  log('STOP-NODE');
  await poll('node 1 to stop', () => existsSync(stopped), (done) => done, 20_000);
  const t0 = Date.now();
  await waitFor(
    b,
    'Bob back in the conference on node 2',
    ([host, id]) => window.confgate.state === 'in'
      && !window.confgate.reconnecting
      && new URL(window.confgate.socketUrl).host === host
      && window.confgate.members.has(id),
    [new URL(linkB).host, bId],
    30_000,
  );
  log(`Bob back in on node 2 after ${Date.now() - t0} ms`);
  await waitFor(b, 'Alice shown as gone', ([id]) => !window.confgate.members.has(id), [aId], 10_000);
  log('Alice shown as gone');
});
