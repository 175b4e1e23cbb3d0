// The lobby: a live conference shows its name, the camera preview and the
// join form; conferences not started (30), ended (31) and unknown (32) each
// say so; the language follows the browser and switches with the button;
// camera and microphone refused still lets one join, watching only; too many
// bad codes get the "too many attempts" message (last: it blocks this address).
//
//   node lobby.mjs BASE LIVE_CODE NOT_STARTED_CODE ENDED_CODE
//
// Screenshots (lobby.png, lobby-zh.png, lobby-phone.png) go to $SCREENSHOT_DIR.

import { STRINGS } from '../../static/i18n.js';
import { fail, joinAs, log, run, screenshot, waitFor } from './lib.mjs';

const [base, live, notStarted, ended] = process.argv.slice(2);
if (!ended) {
  console.error('usage: node lobby.mjs BASE LIVE_CODE NOT_STARTED_CODE ENDED_CODE');
  process.exit(2);
}
const link = (code) => `${base}/gzbwclient/conference/${code}`;
// 27 base64url characters: the shape of an opaque code, naming nothing.
const UNKNOWN = 'AAAAAAAAAAAAAAAAAAAAAAAAAAA';

async function lobbyMessage(page) {
  return page.evaluate(() => {
    const el = document.getElementById('lobbyState');
    return { key: el.dataset.key, text: el.textContent.trim(), state: window.confgate.state };
  });
}

async function expectMessage(page, key, lang) {
  await waitFor(page, `the lobby says ${key}`, (k) => document.getElementById('lobbyState')?.dataset.key === k, key);
  const shown = await lobbyMessage(page);
  if (shown.text !== STRINGS[lang][key]) fail(`${key} in ${lang}: shows "${shown.text}", expected "${STRINGS[lang][key]}"`);
  const formShown = await page.isVisible('#joinForm');
  if (formShown) fail(`${key}: the join form is shown`);
  log(`${key} (${lang}): "${shown.text}"`);
}

run('lobby', 60_000, async (h) => {
  const { page } = await h.open('en', { locale: 'en-US' });

  // A live conference: its name, a playing preview, the form.
  await page.goto(link(live));
  await waitFor(page, 'the lobby of a live conference', () => window.confgate?.state === 'lobby' && window.confgate.confState === 0, null, 10_000);
  const confName = await page.textContent('#confName');
  const expected = await page.evaluate(async (url) => (await (await fetch(`${url}?format=json`)).json()).confName, link(live));
  if (confName.trim() !== expected) fail(`the lobby shows "${confName}", the conference is "${expected}"`);
  log(`conference name: "${confName.trim()}"`);
  await waitFor(page, 'the preview plays the camera', () => {
    const v = document.getElementById('previewVideo');
    return v && !v.hidden && v.videoWidth > 0 && v.currentTime > 0;
  }, null, 10_000);
  const devices = await page.evaluate(() => ({
    cameras: document.getElementById('cameraSelect').options.length,
    microphones: document.getElementById('micSelect').options.length,
    lang: window.confgate.lang,
    problem: window.confgate.deviceProblem,
  }));
  if (devices.lang !== 'en') fail(`an en-US browser gets ${devices.lang}`);
  if (devices.cameras < 2 || devices.microphones < 2) fail(`device choices missing: ${JSON.stringify(devices)}`);
  if (devices.problem) fail(`the fake devices reported a problem: ${devices.problem}`);
  const meter = await page.evaluate(() => !document.getElementById('micLevel').hidden);
  if (!meter) fail('no microphone level on the preview');
  log(`preview plays; ${devices.cameras - 1} camera(s), ${devices.microphones - 1} microphone(s) to choose`);

  // The name is required.
  await page.click('#joinButton');
  await waitFor(page, 'a missing name is refused', () => document.getElementById('formError')?.dataset.key === 'nameRequired');
  if ((await page.evaluate(() => window.confgate.state)) !== 'lobby') fail('joined without a name');
  await page.fill('#nameInput', 'Ann Example');
  await waitFor(page, 'the error goes when typing', () => document.getElementById('formError').hidden);
  await screenshot(page, 'lobby.png');

  // Language: switch to Chinese and back.
  await page.click('#lang');
  await waitFor(page, 'Chinese after the switch', () => window.confgate.lang === 'zh' && document.documentElement.lang === 'zh-CN');
  const joinLabel = (await page.textContent('#joinButton')).trim();
  if (joinLabel !== STRINGS.zh.join) fail(`the join button says "${joinLabel}" in Chinese`);
  await screenshot(page, 'lobby-zh.png');
  await page.click('#lang');
  await waitFor(page, 'English again', () => window.confgate.lang === 'en');

  // Not started, ended, unknown: a clear message and no form.
  await page.goto(link(notStarted));
  await expectMessage(page, 'state30', 'en');
  if (!(await page.isVisible('#retryButton'))) fail('no "check again" for a conference not started');
  await page.goto(link(ended));
  await expectMessage(page, 'state31', 'en');
  await page.goto(link(UNKNOWN));
  await expectMessage(page, 'state32', 'en');
  if (await page.isVisible('#previewVideo')) fail('a preview for an unknown conference');

  // A Chinese browser gets Chinese from the start.
  const zh = await h.open('zh', { locale: 'zh-CN' });
  await zh.page.goto(link(ended));
  await expectMessage(zh.page, 'state31', 'zh');

  // A phone-sized screen.
  const phone = await zh.browser.newContext({ ignoreHTTPSErrors: true, locale: 'zh-CN', viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const phonePage = await phone.newPage();
  phonePage.label = 'phone';
  await phonePage.goto(link(live));
  await waitFor(phonePage, 'the lobby on a phone', () => window.confgate?.state === 'lobby' && window.confgate.confState === 0, null, 10_000);
  await waitFor(phonePage, 'the preview on a phone', () => document.getElementById('previewVideo').videoWidth > 0, null, 10_000);
  const overflow = await phonePage.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) fail(`the phone lobby is ${overflow}px wider than the screen`);
  await screenshot(phonePage, 'lobby-phone.png');
  await phone.close();

  // Camera and microphone refused (no fake UI, nothing granted): a clear
  // message, and joining still works, watching only.
  const denied = await h.open('denied', { fakeUi: false });
  await denied.page.goto(link(live));
  await waitFor(denied.page, 'the refusal is explained', () => window.confgate?.deviceProblem === 'deniedBoth', null, 10_000);
  const deniedText = (await denied.page.textContent('#deviceNotice')).trim();
  if (deniedText !== STRINGS.en.deniedBoth) fail(`the refusal reads "${deniedText}"`);
  log('camera and microphone refused: explained');
  await joinAs(denied.page, link(live), 'Watcher');
  const controls = await denied.page.evaluate(() => ({
    mic: document.getElementById('micButton').disabled,
    cam: document.getElementById('camButton').disabled,
    self: [...window.confgate.members.values()].find((m) => m.userId === window.confgate.selfId),
  }));
  if (!controls.mic || !controls.cam) fail(`a watcher's microphone and camera buttons should be disabled: ${JSON.stringify(controls)}`);
  if (!controls.self?.audioMuted || controls.self?.videoEnabled) fail(`a watcher should join muted with the camera off: ${JSON.stringify(controls.self)}`);
  log('joined watching only');
  await denied.page.click('#leaveButton');
  await waitFor(denied.page, 'left', () => window.confgate.state === 'left');

  // Too many unknown codes from one address: "too many attempts".
  const statuses = await page.evaluate(async () => {
    const seen = [];
    for (let i = 0; i < 30; i += 1) {
      const res = await fetch(`/gzbwclient/conference/BBBBBBBBBBBBBBBBBBBBBBBBBB${i % 10}?format=json`);
      seen.push(res.status);
      if (res.status === 429) break;
    }
    return seen;
  });
  if (statuses.at(-1) !== 429) fail(`no 429 after ${statuses.length} unknown codes`);
  await page.goto(link(live));
  await waitFor(page, 'the lobby says throttled', () => document.getElementById('lobbyState')?.dataset.key === 'throttled');
  const throttled = (await page.textContent('#lobbyState')).trim();
  if (!/Too many attempts/.test(throttled)) fail(`throttled reads "${throttled}"`);
  log(`after ${statuses.length} unknown codes: "${throttled}"`);
});
