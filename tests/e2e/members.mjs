// Members in real time, three browsers on one link: each sees the other two;
// A's microphone and camera changes reach B and C within 1 s; a dropped
// WebSocket reconnects by itself and catches up; A's leave reaches them within
// 1 s; a tab closed without leaving shows as reconnecting, then goes after the
// grace period (the server under test uses a short one, about 1.5 s). With a
// chair's token and the conference id, the chair then ends the conference and
// the remaining page says so.
//
// Latencies are measured by the pages (lib.mjs, `watch`): from A's page taking
// the click to B's and C's pages showing the change.
//
//   node members.mjs LINK [CHAIR_TOKEN CONF_ID]

import { act, fail, joinAs, log, run, seenWithinMs, settle, waitFor, watch } from './lib.mjs';

import { STRINGS } from '../../static/i18n.js';

const [link, chairToken, confId] = process.argv.slice(2);
if (!link) {
  console.error('usage: node members.mjs LINK [CHAIR_TOKEN CONF_ID]');
  process.exit(2);
}

// In the page: whether member `userId` shows `attr` as `value` (a string), in
// the member list and in the page's state.
const shows = ([userId, attr, value]) =>
  document.querySelector(`#memberList li[data-user-id="${userId}"]`)?.dataset[attr] === value
  && String(window.confgate.members.get(userId)?.[attr]) === value;

run('members', 60_000, async (h) => {
  const pages = [];
  const ids = [];
  const everyone = [];
  for (const name of ['Alice', 'Bob', '陈晨']) {
    const { page } = await h.open(name);
    // The ones already in watch for the whole member list of three.
    if (name === '陈晨') {
      for (const p of pages) everyone.push(await watch(p, () => window.confgate.members.size === 3 && document.querySelectorAll('#memberList li').length === 3));
    }
    const id = await joinAs(page, link, name);
    log(`${name} joined as ${id}`);
    pages.push(page);
    ids.push(id);
  }
  const [a, b, c] = pages;
  const [aId, bId, cId] = ids;

  // Everyone sees everyone, in the hook and in the member list, within 2 s of
  // the last one being in.
  const lastIn = Date.now();
  everyone.push(await watch(c, () => window.confgate.members.size === 3 && document.querySelectorAll('#memberList li').length === 3));
  const latencies = await seenWithinMs('all three in the member list', everyone, lastIn, 2000);
  log(`each sees the other two (relative to the last join: ${latencies.join(', ')} ms)`);
  for (const [i, page] of pages.entries()) {
    const others = ids.filter((_, j) => j !== i);
    const listed = await page.evaluate((want) => want.every((id) => document.querySelector(`#memberList li[data-user-id="${id}"]`)), others);
    if (!listed) fail(`${page.label}: the member list lacks one of ${others.join(', ')}`);
  }
  const names = await b.evaluate(() => [...document.querySelectorAll('#memberList li .name')].map((e) => e.textContent));
  if (!names.some((n) => n.startsWith('陈晨'))) fail(`B's list lacks 陈晨: ${JSON.stringify(names)}`);
  const tiles = await b.evaluate(() => document.querySelectorAll('#grid .tile, #stage[data-user-id]').length);
  if (tiles < 2) fail(`B shows ${tiles} video places for two others`);
  await Promise.all(pages.map((p) => settle(p)));

  // A mutes.
  let watching = await Promise.all([b, c].map((p) => watch(p, shows, [aId, 'audioMuted', 'true'])));
  let t = await act(a, () => document.getElementById('micButton').click());
  let seen = await seenWithinMs('A shown muted', watching, t, 1000);
  log(`A muted: seen by B and C after ${seen.join(', ')} ms`);
  const pressed = await a.evaluate(() => document.getElementById('micButton').getAttribute('aria-pressed'));
  if (pressed !== 'true') fail('A\'s microphone button does not show muted');

  // A turns the camera off.
  watching = await Promise.all([b, c].map((p) => watch(p, shows, [aId, 'videoEnabled', 'false'])));
  t = await act(a, () => document.getElementById('camButton').click());
  seen = await seenWithinMs('A shown with the camera off', watching, t, 1000);
  log(`A camera off: seen by B and C after ${seen.join(', ')} ms`);

  // B's WebSocket drops; meanwhile A unmutes. B reconnects on its own with
  // lastSeq, joins again and catches up.
  const bSeq = await b.evaluate(() => window.confgate.seq);
  await b.evaluate(() => window.confgate.dropConnection());
  await waitFor(b, 'B notices the drop', () => window.confgate.reconnecting && !document.getElementById('banner').hidden, null, 2000);
  await a.click('#micButton');
  await waitFor(b, 'B back in after a dropped connection', () => window.confgate.state === 'in' && !window.confgate.reconnecting, null, 5000);
  await waitFor(b, 'B caught up with A unmuted', shows, [aId, 'audioMuted', 'false'], 5000);
  await waitFor(a, 'A sees B connected again', shows, [bId, 'connected', 'true'], 3000);
  await waitFor(c, 'C sees B connected again', shows, [bId, 'connected', 'true'], 3000);
  const after = await b.evaluate(() => window.confgate.seq);
  if (!(after > bSeq)) fail(`B's seq did not move on after the reconnect (${bSeq} → ${after})`);
  log(`B reconnected: seq ${bSeq} → ${after}, A unmuted seen`);

  // A leaves.
  const gone = ([id]) => !window.confgate.members.has(id)
    && !document.querySelector(`#memberList li[data-user-id="${id}"]`)
    && !document.querySelector(`#grid .tile[data-user-id="${id}"]`);
  watching = await Promise.all([b, c].map((p) => watch(p, gone, [aId])));
  t = await act(a, () => document.getElementById('leaveButton').click());
  seen = await seenWithinMs('A gone', watching, t, 1000);
  log(`A left: seen by B and C after ${seen.join(', ')} ms`);
  await waitFor(a, 'A\'s page says it left', () => window.confgate.state === 'left' && window.confgate.farewell === 'farewellLeft');

  // C's tab closes without leaving: reconnecting, then gone.
  const reconnecting = await watch(b, shows, [cId, 'connected', 'false']);
  const left = await watch(b, gone, [cId]);
  t = Date.now();
  await c.close();
  [seen] = await seenWithinMs('C shown reconnecting', [reconnecting], t, 2000);
  log(`C's tab closed: B shows C reconnecting after ${seen} ms`);
  const marked = await b.evaluate((id) => document.querySelector(`#memberList li[data-user-id="${id}"] .ind.reconnecting`) !== null, cId);
  if (!marked) fail('no reconnecting mark for C in B\'s member list');
  [seen] = await seenWithinMs('C gone after the grace period', [left], t, 6000);
  log(`C gone after ${seen} ms`);

  // The chair ends the conference: B's page says so.
  if (chairToken) {
    const ended = await b.evaluate(async ([token, id]) => {
      const res = await fetch('/gzbwclient/jsonrpc', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'conference.end', params: { confId: id } }),
      });
      return res.json();
    }, [chairToken, confId]);
    if (ended.result?.state !== 31) fail(`conference.end: ${JSON.stringify(ended)}`);
    await waitFor(b, 'B told the conference ended', () => window.confgate.farewell === 'farewellEnded', null, 2000);
    const title = (await b.textContent('#farewellTitle')).trim();
    if (title !== STRINGS.en.farewellEnded) fail(`the end reads "${title}"`);
    const state = await b.evaluate(() => window.confgate.state);
    if (state !== 'left') fail(`after the end B's state is ${state}`);
    log(`the chair ended the conference: B shows "${title}"`);
  }
});
