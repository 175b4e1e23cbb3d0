// A node of a pool stops under live pages. Alice's page is loaded from node 1,
// which serves the conference; Bob's is loaded from node 2 and sent to node 1.
// Then node 1 stops (the Rust test does it when this script prints
// `STOP-NODE`, and answers by creating the file STOPPED). Both pages find by
// themselves that node 2 serves the conference now: Bob's through its own
// node, Alice's (whose node is gone) through the pool the join named. Both
// are back in on node 2, each sees the other, and media flows again.
//
//   node node_failover.mjs LINK_ON_NODE_1 LINK_ON_NODE_2 STOPPED_FILE

import { existsSync } from 'node:fs';

import { expectMedia, fail, joinAs, log, poll, run, settle, sleep, stats, waitFor } from './lib.mjs';

const [linkA, linkB, stopped] = process.argv.slice(2);
if (!linkA || !linkB || !stopped) {
  console.error('usage: node node_failover.mjs LINK_ON_NODE_1 LINK_ON_NODE_2 STOPPED_FILE');
  process.exit(2);
}
const nodeOne = new URL(linkA).host;
const nodeTwo = new URL(linkB).host;

// Each page decodes the other's video, and keeps decoding it (media flows now,
// not only once).
async function eachDecodesTheOther(pairs, when) {
  for (const [page, other] of pairs) {
    await poll(`${page.label} decoding the other's video ${when}`, () => stats(page), (s) => (s[other]?.video?.framesDecoded ?? 0) > 10, 20_000);
    const before = (await stats(page))[other]?.video?.framesDecoded ?? 0;
    await sleep(1000);
    const after = (await stats(page))[other]?.video?.framesDecoded ?? 0;
    if (after <= before) fail(`${page.label}: the other's video stopped ${when} (${before} then ${after} frames)`);
  }
}

run('node_failover', 90_000, async (h) => {
  const { page: a } = await h.open('Alice');
  const aId = await joinAs(a, linkA, 'Alice');
  const { page: b } = await h.open('Bob');
  const bId = await joinAs(b, linkB, 'Bob');
  await waitFor(b, 'Bob sees Alice', ([id]) => window.confgate.members.has(id), [aId], 5000);
  for (const page of [a, b]) {
    const url = await page.evaluate(() => window.confgate.socketUrl);
    if (new URL(url).host !== nodeOne) fail(`${page.label}'s WebSocket is on ${url}, not on node 1 (${nodeOne})`);
  }
  await Promise.all([a, b].map((p) => settle(p)));
  await expectMedia(a);
  await expectMedia(b);
  await eachDecodesTheOther([[a, bId], [b, aId]], 'before node 1 stops');
  log(`Alice (${aId}) loaded from ${nodeOne}, Bob (${bId}) from ${nodeTwo}; both on ${nodeOne}, media flowing`);

  log('STOP-NODE');
  await poll('node 1 to stop', () => existsSync(stopped), (done) => done, 20_000);
  const t0 = Date.now();
  for (const [page, other] of [[b, aId], [a, bId]]) {
    await waitFor(
      page,
      `${page.label} back in the conference on node 2, with the other`,
      ([host, id]) => window.confgate.state === 'in'
        && !window.confgate.reconnecting
        && new URL(window.confgate.socketUrl).host === host
        && window.confgate.members.has(id),
      [nodeTwo, other],
      30_000,
    );
    log(`${page.label} back in on node 2 after ${Date.now() - t0} ms`);
  }
  await Promise.all([a, b].map((p) => settle(p, 20_000)));
  await expectMedia(a);
  await expectMedia(b);
  await eachDecodesTheOther([[a, bId], [b, aId]], 'after node 1 stopped');
  log(`media flows again through node 2, ${Date.now() - t0} ms after node 1 stopped`);
});
