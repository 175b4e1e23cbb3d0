// A small harness for driving the join page in headless Chromium (Debian's,
// through playwright-core; no browser download). Each script calls `run`,
// which gives it a total timeout, closes every browser it launched whatever
// happens, and exits 0 on success or 1 with the failure and each page's
// console errors.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

// The flags of docs WEBRTC-NOTES ("Chromium end to end").
const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--use-fake-device-for-media-stream',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--ignore-certificate-errors',
  // Three pages share two cores: a page in the background must not be
  // throttled, or its timers and media stall.
  '--disable-renderer-backgrounding',
  '--disable-background-timer-throttling',
  '--disable-backgrounding-occluded-windows',
];
// Grants camera and microphone without asking; it also makes Chromium show its
// real host addresses in ICE candidates instead of mDNS names.
const FAKE_UI = '--use-fake-ui-for-media-stream';

const started = Date.now();

export function log(message) {
  const seconds = ((Date.now() - started) / 1000).toFixed(1).padStart(5);
  console.log(`[${seconds}s] ${message}`);
}

export class Failure extends Error {}

export function fail(message) {
  throw new Failure(message);
}

// Runs `main(harness)` with a total timeout; never returns.
export function run(name, timeoutMs, main) {
  const browsers = [];
  const pages = [];
  let finished = false;

  const finish = async (code, message) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    if (code !== 0) {
      console.error(`\n${name}: FAILED: ${message}`);
      for (const p of pages) {
        if (p.errors.length) console.error(`\n  console of ${p.label}:\n    ${p.errors.slice(-30).join('\n    ')}`);
      }
      for (const p of pages) {
        const state = await describe(p.page).catch(() => null);
        if (state) console.error(`\n  ${p.label}: ${JSON.stringify(state)}`);
      }
    } else {
      log(`${name}: passed`);
    }
    await Promise.allSettled(browsers.map((b) => b.close()));
    process.exit(code);
  };

  const timer = setTimeout(
    () => finish(1, `timed out after ${timeoutMs / 1000} s`),
    timeoutMs,
  );

  const harness = {
    // A browser with a fresh profile and one page. `fakeUi: false` leaves out
    // --use-fake-ui-for-media-stream (grant permissions yourself, or not).
    async open(label, { fakeUi = true, locale = 'en-US', viewport = { width: 1280, height: 800 } } = {}) {
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: fakeUi ? [...ARGS, FAKE_UI] : ARGS,
      });
      browsers.push(browser);
      const context = await browser.newContext({ ignoreHTTPSErrors: true, locale, viewport });
      const page = await context.newPage();
      const entry = { label, page, errors: [] };
      pages.push(entry);
      page.on('console', (m) => {
        // Errors, warnings, and the page's own notes (ICE states, restarts).
        if (m.type() === 'error' || m.type() === 'warning' || m.text().startsWith('confgate:')) {
          const at = ((Date.now() - started) / 1000).toFixed(1);
          entry.errors.push(`${at}s ${m.type()}: ${m.text()}`);
        }
      });
      page.on('pageerror', (e) => entry.errors.push(`pageerror: ${e.message}`));
      page.label = label;
      return { browser, context, page };
    },
  };

  main(harness).then(
    () => finish(0),
    (e) => finish(1, e instanceof Failure ? e.message : e?.stack || String(e)),
  );
}

// What the page's test hook says, for failure messages.
export async function describe(page) {
  return page.evaluate(async () => {
    const c = window.confgate;
    if (!c) return { hook: 'window.confgate is missing' };
    return {
      state: c.state,
      confState: c.confState,
      lobby: c.lobbyMessage,
      farewell: c.farewell,
      selfId: c.selfId,
      seq: c.seq,
      mainVideo: c.mainVideo,
      members: [...c.members.values()].map((m) => `${m.name}${m.audioMuted ? ' muted' : ''}${m.videoEnabled ? '' : ' camoff'}${m.connected ? '' : ' reconnecting'}`),
      mediaError: c.mediaError,
      ice: c.iceStates,
      stats: await c.stats(),
    };
  });
}

// Waits until `fn(arg)` is true in the page; fails saying `what`.
export async function waitFor(page, what, fn, arg, timeoutMs = 5000) {
  try {
    await page.waitForFunction(fn, arg, { timeout: timeoutMs, polling: 50 });
  } catch (e) {
    if (e.name !== 'TimeoutError') throw e;
    fail(`${page.label}: ${what}: not within ${timeoutMs} ms`);
  }
}

// Waits for `what` on each page, all started at `t0`; fails past `withinMs`.
// Returns the observed latencies in milliseconds.
export async function seenWithin(pages, what, fn, arg, withinMs, t0 = Date.now()) {
  return Promise.all(pages.map(async (page) => {
    const left = Math.max(1, withinMs - (Date.now() - t0));
    await waitFor(page, what, fn, arg, left);
    return Date.now() - t0;
  }));
}

// Latency measured by the pages themselves: polling from Node through the
// DevTools protocol adds hundreds of milliseconds on a loaded machine, which
// is the harness's time, not the page's. All browsers run on this machine, so
// their Date.now() clocks agree.
//
// `watch` starts recording, in `page`, the time at which `fn(arg)` first holds
// (checked on every DOM change); `act` does something in a page and returns
// that page's clock just before; `seenAt` waits for a watch and returns its
// time.
let watches = 0;

export async function watch(page, fn, arg) {
  const id = `w${(watches += 1)}`;
  await page.evaluate(([key, source, value]) => {
    // eslint-disable-next-line no-new-func
    const test = new Function('arg', `return (${source})(arg);`);
    const record = (window.__watches ??= {});
    record[key] = null;
    const check = () => {
      if (record[key] === null && test(value)) {
        record[key] = Date.now();
        observer.disconnect();
      }
    };
    const observer = new MutationObserver(check);
    observer.observe(document.documentElement, { subtree: true, childList: true, attributes: true, characterData: true });
    check();
  }, [id, fn.toString(), arg]);
  return { page, id };
}

export async function act(page, fn, arg) {
  return page.evaluate(([source, value]) => {
    const at = Date.now();
    // eslint-disable-next-line no-new-func
    new Function('arg', `return (${source})(arg);`)(value);
    return at;
  }, [fn.toString(), arg]);
}

// Waits (up to `timeoutMs`, generous: this is only the harness's patience)
// for each watch; returns the latencies from `t0` and fails past `withinMs`.
export async function seenWithinMs(what, list, t0, withinMs, timeoutMs = 10_000) {
  const latencies = await Promise.all(list.map(async ({ page, id }) => {
    await waitFor(page, what, (key) => window.__watches?.[key] != null, id, timeoutMs);
    return (await page.evaluate((key) => window.__watches[key], id)) - t0;
  }));
  latencies.forEach((ms, i) => {
    if (ms > withinMs) fail(`${list[i].page.label}: ${what}: after ${ms} ms, more than ${withinMs} ms`);
  });
  return latencies;
}

// Waits until the page's media legs are connected, or the page knows the
// server has no media: timed checks then measure a conference in its steady
// state, not browsers still starting their media. Does not fail.
export async function settle(page, timeoutMs = 10_000) {
  try {
    await page.waitForFunction(() => {
      const c = window.confgate;
      if (c.mediaError) return true;
      const up = (s) => s === 'connected' || s === 'completed';
      return up(c.iceStates.subscribe) && (c.iceStates.publish === null || up(c.iceStates.publish));
    }, null, { timeout: timeoutMs, polling: 100 });
  } catch (e) {
    if (e.name !== 'TimeoutError') throw e;
    log(`${page.label}: media not up after ${timeoutMs} ms; going on`);
  }
}

// Opens the join link, waits for the lobby of a live conference, types the
// name and joins (muted first in the lobby with `muted`); resolves with the
// user id when the page is in the conference.
export async function joinAs(page, link, name, { muted = false, timeoutMs = 15000 } = {}) {
  await page.goto(link);
  await waitFor(page, 'the lobby of a live conference', () => window.confgate?.state === 'lobby' && window.confgate.confState === 0, null, timeoutMs);
  if (muted) {
    await waitFor(page, 'the microphone open in the lobby', () => !document.getElementById('previewMic').disabled, null, timeoutMs);
    await page.click('#previewMic');
  }
  await page.fill('#nameInput', name);
  await page.click('#joinButton');
  await waitFor(page, 'in the conference', () => window.confgate.state === 'in', null, timeoutMs);
  return page.evaluate(() => window.confgate.selfId);
}

// Saves a screenshot when SCREENSHOT_DIR is set; returns the path or null.
export async function screenshot(page, file) {
  const dir = process.env.SCREENSHOT_DIR;
  if (!dir) return null;
  mkdirSync(dir, { recursive: true });
  const path = join(dir, file);
  await page.screenshot({ path });
  log(`screenshot ${path}`);
  return path;
}

export function usage(text) {
  console.error(`usage: node ${text}`);
  process.exit(2);
}

// Calls `probe()` (in Node) every `intervalMs` until `accept(value)`; returns
// that value. Fails with `what` and the last value past `timeoutMs`.
export async function poll(what, probe, accept, timeoutMs, intervalMs = 200) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await probe();
    if (accept(last)) return last;
    if (Date.now() >= deadline) fail(`${what}: not within ${timeoutMs} ms (last: ${JSON.stringify(last)})`);
    await sleep(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// The page's per-member receive counters (window.confgate.stats()).
export function stats(page) {
  return page.evaluate(() => window.confgate.stats());
}

// Fails when the page found the server's media missing (media.offer refused).
export async function expectMedia(page) {
  const error = await page.evaluate(() => window.confgate.mediaError);
  if (error) fail(`${page.label}: the server refused media: ${error}`);
}
