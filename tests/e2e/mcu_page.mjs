// MCU mode: a conference bound to a SIP/MCU conference system. One browser
// joins; after it publishes, the server calls the MCU for it and tells the
// page with `mcu.state` notifications, and adds the MCU's composed picture and
// mixed audio to the subscribe connection as the stream "mcu". The page must
// reach `connected`, show that stream on the stage (window.confgate.mcuMain)
// and decode it (more than 20 frames, and still growing); the stream is never
// a member (no member, tile or list entry "mcu"), its audio arrives when the
// MCU bridges audio, and the MCU badge says connected. Needs the server's
// media side and a conference system to call (the Rust test starts one).
//
//   node mcu_page.mjs LINK          (or JOIN_URL=LINK node mcu_page.mjs)
//
// JOIN_NAME sets the member's name (default Alice). MCU_CODECS=opus,vp8 (say)
// names the codecs the call must settle on; MCU_ASKS_KEYFRAMES=1 expects the
// MCU's key frame requests to reach the browser as PLIs. A screenshot of the page
// goes to $SCREENSHOT when set, and to $SCREENSHOT_DIR/mcu.png when that is
// set. On success the last line on stdout is a one-line JSON summary:
//
//   {"script":"mcu_page","ok":true,"userId":…,"mcuState":{…},"mcuMain":true,
//    "mcu":{"framesDecoded":…,"packetsReceived":…,"audioPacketsReceived":…},
//    "stage":{"width":…,"height":…},"timings":{…},"screenshot":…}

import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

import { expectMedia, fail, joinAs, log, poll, run, screenshot, sleep, stats } from './lib.mjs';

const link = process.argv[2] || process.env.JOIN_URL;
if (!link) {
  console.error('usage: node mcu_page.mjs LINK   (or set JOIN_URL)');
  process.exit(2);
}
const name = process.env.JOIN_NAME || 'Alice';

// From in the conference to `mcu.state` connected: publish, then a SIP call
// (INVITE, answer, ACK) on a loaded two-core machine.
const MCU_CONNECTED_MS = 30_000;
// From connected to the MCU's picture decoded on the stage: a renegotiation of
// the subscribe connection, then a keyframe.
const MCU_MEDIA_MS = 20_000;
// "Decoding": more frames than a keyframe and a few stragglers.
const MIN_FRAMES = 20;
// The frames must keep growing between two samples within this long.
const GROWTH_MS = 3000;

const mcuCount = (s, kind, field) => s?.mcu?.[kind]?.[field] ?? 0;

// The page's view of the MCU: its state, the stage, the badge, the counters.
async function mcuView(page) {
  return page.evaluate(async () => {
    const c = window.confgate;
    const video = document.getElementById('mainVideo');
    const badge = document.getElementById('mcuStatus');
    return {
      mcuState: c.mcuState,
      mcuMain: c.mcuMain,
      stage: {
        source: document.getElementById('stage').dataset.source ?? null,
        hidden: video.hidden,
        width: video.videoWidth,
        height: video.videoHeight,
      },
      badge: badge && !badge.hidden ? { state: badge.dataset.state, text: badge.textContent } : null,
      stats: await c.stats(),
    };
  });
}

run('mcu_page', 90_000, async (h) => {
  const t0 = Date.now();
  const { page } = await h.open(name);
  const userId = await joinAs(page, link, name);
  const joinedMs = Date.now() - t0;
  log(`${name} joined as ${userId}`);
  let shot = null;
  try {
    // The MCU call: connected, or a clear failure with the server's reason.
    const state = await poll(
      `${page.label}: mcu.state connected`,
      async () => {
        await expectMedia(page);
        return page.evaluate(() => window.confgate.mcuState);
      },
      (s) => {
        if (s?.state === 'failed' || s?.state === 'ended') {
          fail(`${page.label}: the MCU call ${s.state}${s.reason ? `: ${s.reason}` : ''}`);
        }
        return s?.state === 'connected';
      },
      MCU_CONNECTED_MS,
      100,
    );
    const connectedMs = Date.now() - t0;
    log(`MCU connected: audio ${state.audio}, video ${state.video}`);
    if (state.video == null) fail(`the MCU call bridges no video: ${JSON.stringify(state)}`);
    // MCU_CODECS=audio,video: the codecs the call must have settled on.
    if (process.env.MCU_CODECS) {
      const [audio, video] = process.env.MCU_CODECS.split(',');
      if (state.audio !== audio || state.video !== video) {
        fail(`the MCU call settled on ${state.audio}/${state.video}, expected ${audio}/${video}`);
      }
    }

    // Its picture on the stage, decoding.
    let view = await poll(
      `${page.label}: the MCU's picture on the stage with more than ${MIN_FRAMES} frames decoded`,
      () => mcuView(page),
      (v) => {
        if (v.mcuState?.state !== 'connected') fail(`${page.label}: the MCU call went ${v.mcuState?.state}${v.mcuState?.reason ? `: ${v.mcuState.reason}` : ''}`);
        return v.mcuMain === true && mcuCount(v.stats, 'video', 'framesDecoded') > MIN_FRAMES;
      },
      MCU_MEDIA_MS,
      250,
    );
    const onStageMs = Date.now() - t0;
    let previous = mcuCount(view.stats, 'video', 'framesDecoded');
    const first = previous;
    view = await poll(
      `${page.label}: the MCU's frames keep decoding on the stage`,
      () => mcuView(page),
      (v) => {
        const now = mcuCount(v.stats, 'video', 'framesDecoded');
        const grew = now > previous && v.mcuMain === true;
        previous = now;
        return grew;
      },
      GROWTH_MS,
      250,
    );
    const framesDecoded = mcuCount(view.stats, 'video', 'framesDecoded');
    log(`MCU on the stage: ${framesDecoded} frames decoded (+${framesDecoded - first}), ${view.stage.width}x${view.stage.height}`);
    if (view.stage.source !== 'mcu' || view.stage.hidden) fail(`the stage does not show the MCU: ${JSON.stringify(view.stage)}`);
    if (view.badge?.state !== 'connected') fail(`the MCU badge does not say connected: ${JSON.stringify(view.badge)}`);

    // The MCU is not a member, nowhere on the page.
    const members = await page.evaluate(() => ({
      inState: window.confgate.members.has('mcu'),
      tiles: document.querySelectorAll('#grid [data-user-id="mcu"]').length,
      listed: document.querySelectorAll('#memberList [data-user-id="mcu"]').length,
      stageUser: document.getElementById('stage').dataset.userId ?? null,
    }));
    if (members.inState || members.tiles || members.listed || members.stageUser) {
      fail(`the MCU's stream shows as a member: ${JSON.stringify(members)}`);
    }

    // Its audio, when bridged: arriving, and played by an element of its own.
    let audioPacketsReceived = mcuCount(view.stats, 'audio', 'packetsReceived');
    if (state.audio != null) {
      const s = await poll(
        `${page.label}: the MCU's audio arriving`,
        () => stats(page),
        (x) => mcuCount(x, 'audio', 'packetsReceived') > 0,
        5000,
      );
      audioPacketsReceived = mcuCount(s, 'audio', 'packetsReceived');
      const sink = await page.evaluate(() => {
        const el = document.querySelector('#audioSinks audio[data-source="mcu"]');
        return el ? { tracks: el.srcObject?.getAudioTracks().length ?? 0 } : null;
      });
      if (!sink || sink.tracks === 0) fail(`no audio element plays the MCU's audio: ${JSON.stringify(sink)}`);
      log(`MCU audio: ${audioPacketsReceived} packets received`);
    }

    // MCU_ASKS_KEYFRAMES=1: the MCU asks for key frames (SIP INFO
    // picture_fast_update, 5 s and 6 s into the call); the server must pass
    // them on as a PLI on this browser's publish connection.
    if (process.env.MCU_ASKS_KEYFRAMES) {
      const pli = (p) => p.video?.pliCount ?? 0;
      const before = pli(await page.evaluate(() => window.confgate.publishStats()));
      const after = await poll(
        `${page.label}: the MCU's key frame request arriving as a PLI`,
        () => page.evaluate(() => window.confgate.publishStats()),
        (p) => pli(p) > before,
        15_000,
      );
      log(`PLIs on the publish connection: ${before} -> ${pli(after)} (${after.video?.codec})`);
    }

    await sleep(200);
    if (process.env.SCREENSHOT) {
      mkdirSync(dirname(process.env.SCREENSHOT), { recursive: true });
      await page.screenshot({ path: process.env.SCREENSHOT });
      shot = process.env.SCREENSHOT;
      log(`screenshot ${shot}`);
    }
    shot = (await screenshot(page, 'mcu.png')) ?? shot;

    console.log(JSON.stringify({
      script: 'mcu_page',
      ok: true,
      userId,
      mcuState: view.mcuState,
      mcuMain: view.mcuMain,
      mcu: {
        framesDecoded,
        packetsReceived: mcuCount(view.stats, 'video', 'packetsReceived'),
        audioPacketsReceived,
      },
      stage: { width: view.stage.width, height: view.stage.height },
      timings: { joinedMs, connectedMs, onStageMs },
      screenshot: process.env.SCREENSHOT || shot,
    }));
  } finally {
    // On a failure, the page as it was.
    if (!shot) {
      if (process.env.SCREENSHOT) {
        mkdirSync(dirname(process.env.SCREENSHOT), { recursive: true });
        await page.screenshot({ path: process.env.SCREENSHOT }).catch(() => {});
      }
      await screenshot(page, 'mcu.png').catch(() => {});
    }
  }
});
