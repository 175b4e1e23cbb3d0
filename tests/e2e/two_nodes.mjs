// Two nodes of one pool, one conference: A opens the link on node 1, B on
// node 2. The conference is served by one node, so the node that does not
// serve it sends its page there (the join's `gateway`); both pages then see
// each other, and each one's mute reaches the other within 1 s. Media flows
// both ways through the serving node.
//
//   node two_nodes.mjs LINK_ON_NODE_1 LINK_ON_NODE_2

import { act, expectMedia, fail, joinAs, log, poll, run, seenWithinMs, settle, stats, watch } from './lib.mjs';

const [linkA, linkB] = process.argv.slice(2);
if (!linkA || !linkB) {
  console.error('usage: node two_nodes.mjs LINK_ON_NODE_1 LINK_ON_NODE_2');
  process.exit(2);
}

const shows = ([userId, attr, value]) =>
  document.querySelector(`#memberList li[data-user-id="${userId}"]`)?.dataset[attr] === value
  && String(window.confgate.members.get(userId)?.[attr]) === value;

run('two_nodes', 60_000, async (h) => {
  const { page: a } = await h.open('Alice');
  const aId = await joinAs(a, linkA, 'Alice');
  const { page: b } = await h.open('Bob');
  const bId = await joinAs(b, linkB, 'Bob');
  log(`Alice (${aId}) on ${new URL(linkA).host}, Bob (${bId}) on ${new URL(linkB).host}`);
  for (const [page, other] of [[a, bId], [b, aId]]) {
    await watch(page, ([id]) => window.confgate.members.has(id), [other]);
  }
  await Promise.all([a, b].map((p) => settle(p)));
  await expectMedia(a);
  await expectMedia(b);
  for (const [page, other] of [[a, bId], [b, aId]]) {
    await poll(`${page.label} decoding the other's video`, () => stats(page), (s) => (s[other]?.video?.framesDecoded ?? 0) > 10, 15_000);
  }
  log('each decodes the other');

  for (const [from, fromId, to, label] of [[a, aId, b, 'Alice'], [b, bId, a, 'Bob']]) {
    const watching = [await watch(to, shows, [fromId, 'audioMuted', 'true'])];
    const t = await act(from, () => document.getElementById('micButton').click());
    const seen = await seenWithinMs(`${label} shown muted on the other node's page`, watching, t, 1000);
    log(`${label} muted: seen after ${seen.join(', ')} ms`);
  }
  const sockets = await Promise.all([a, b].map((p) => p.evaluate(() => window.confgate.socketUrl ?? null)));
  if (sockets.some((s) => s === null)) fail('the test hook does not say where the WebSocket went');
  if (new URL(sockets[0]).host !== new URL(sockets[1]).host) {
    fail(`the two pages use different gateways: ${sockets.join(' and ')}`);
  }
  log(`both WebSockets on ${new URL(sockets[0]).host}`);
});
