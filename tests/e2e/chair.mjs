// The chair and the server: a chair joins through its own link
// (LINK#chair=TOKEN) and pins a member from the member list: every page's main
// video switches within 1 s; unpinning goes back to the chair's camera. Then
// the server cuts B's WebSocket from its side (the Rust test does it when this
// script prints `CUT <userId>`, and answers by creating the file CUT_DONE):
// B reconnects by itself, and its member list equals the others'.
//
//   node chair.mjs LINK CHAIR_TOKEN CUT_DONE_FILE

import { existsSync } from 'node:fs';

import { act, fail, joinAs, log, poll, run, screenshot, seenWithinMs, settle, waitFor, watch } from './lib.mjs';

const [link, chairToken, cutDone] = process.argv.slice(2);
if (!link || !chairToken || !cutDone) {
  console.error('usage: node chair.mjs LINK CHAIR_TOKEN CUT_DONE_FILE');
  process.exit(2);
}

// A page's member list, as comparable data.
const roster = () => [...window.confgate.members.values()]
  .map((m) => `${m.userId}:${m.audioMuted}:${m.videoEnabled}:${m.connected}:${m.role}`)
  .sort()
  .join(',');

run('chair', 60_000, async (h) => {
  const { page: chair } = await h.open('Chair');
  const chairId = await joinAs(chair, `${link}#chair=${chairToken}`, 'Chair');
  const role = await chair.evaluate((id) => window.confgate.members.get(id)?.role, chairId);
  if (role !== 'chair') fail(`the chair's link joined as ${role}, not chair`);
  if (await chair.evaluate(() => location.hash !== '')) fail('the chair token stayed in the address bar');

  const { page: a } = await h.open('Alice');
  const aId = await joinAs(a, link, 'Alice');
  const { page: b } = await h.open('Bob');
  const bId = await joinAs(b, link, 'Bob');
  const pages = [chair, a, b];
  for (const p of pages) {
    await waitFor(p, 'three members', () => window.confgate.members.size === 3, null, 5000);
    await settle(p);
  }
  for (const p of pages) {
    await waitFor(p, "the chair's camera as the main video", (id) => window.confgate.mainVideo === id, chairId, 5000);
  }
  log('everyone shows the chair as the main video');

  // Only the chair has pin buttons.
  await waitFor(chair, 'pin buttons for the chair', (id) => !!document.querySelector(`#memberList button[data-pin="${id}"]`), aId);
  if (await a.evaluate(() => document.querySelectorAll('#memberList button[data-pin]').length) !== 0) {
    fail('a member sees pin buttons');
  }

  // The chair pins Alice from the member list.
  let seen = [];
  for (const p of pages) seen.push(await watch(p, (id) => window.confgate.mainVideo === id && window.confgate.mainVideoCause === 'pinned', aId));
  await chair.evaluate(() => document.getElementById('people')?.classList.add('open'));
  let t0 = await act(chair, (id) => document.querySelector(`#memberList button[data-pin="${id}"]`).click(), aId);
  let ms = await seenWithinMs('Alice pinned as the main video', seen, t0, 1000);
  log(`pinned: every page switched in ${ms.join(', ')} ms`);
  await screenshot(chair, 'chair-pinned.png');

  // Unpin: back to the chair.
  seen = [];
  for (const p of pages) seen.push(await watch(p, (id) => window.confgate.mainVideo === id, chairId));
  t0 = await act(chair, (id) => window.confgate.pin(id), aId);
  ms = await seenWithinMs('unpinned: the chair again', seen, t0, 1000);
  log(`unpinned in ${ms.join(', ')} ms`);

  // The server cuts B's WebSocket.
  log(`CUT ${bId}`);
  await poll('the server to cut the connection', () => existsSync(cutDone), (done) => done, 10_000);
  await waitFor(b, 'B back in the conference after the cut', () => window.confgate.state === 'in' && !window.confgate.reconnecting, null, 10_000);
  await poll(
    "B's member list to equal the others'",
    async () => Promise.all(pages.map((p) => p.evaluate(roster))),
    ([c, x, y]) => c === x && x === y && c.split(',').length === 3,
    5000,
  );
  log('B reconnected by itself; all three member lists agree');
  // And B still receives media from the others.
  await poll('B decoding again', () => b.evaluate(() => window.confgate.stats()), (s) => Object.values(s).some((m) => (m.video?.framesDecoded ?? 0) > 0), 10_000);
});
