// mDNS candidates: a browser that has no camera or microphone permission
// hides its host addresses behind `<uuid>.local` names, as a real user's
// browser does before (or without) granting them. The server must still
// connect (it learns the address from the STUN checks): that browser and a
// normal one decode each other's video. Needs the server's media side.
//
// Chromium 156 reveals its real addresses as soon as the page holds a camera
// or microphone permission, whether from --use-fake-ui-for-media-stream or
// from context.grantPermissions (measured: `typ host` with 192.0.2.2 and
// fd00::2). So the hidden browser gets no permission at all, and its
// getUserMedia is replaced, before the page loads, by a synthetic camera (an
// animated canvas) and microphone (an oscillator): the page publishes as
// usual, and its candidates stay mDNS names.
//
//   node mdns.mjs LINK

import { expectMedia, fail, joinAs, log, poll, run, stats } from './lib.mjs';

const link = process.argv[2];
if (!link) {
  console.error('usage: node mdns.mjs LINK');
  process.exit(2);
}
const MEDIA_UP_MS = 20_000;

// Runs in the page before its scripts: getUserMedia without a permission.
function syntheticDevices() {
  navigator.mediaDevices.getUserMedia = async (constraints) => {
    const tracks = [];
    if (constraints.video) {
      const canvas = Object.assign(document.createElement('canvas'), { width: 640, height: 360 });
      const g = canvas.getContext('2d');
      let frame = 0;
      setInterval(() => {
        frame += 1;
        g.fillStyle = `hsl(${(frame * 3) % 360} 60% 40%)`;
        g.fillRect(0, 0, 640, 360);
        g.fillStyle = '#fff';
        g.font = '64px sans-serif';
        g.fillText(`mDNS ${frame}`, 40, 200);
      }, 40);
      tracks.push(...canvas.captureStream(25).getVideoTracks());
    }
    if (constraints.audio) {
      const context = new AudioContext();
      const tone = context.createOscillator();
      const out = context.createMediaStreamDestination();
      tone.connect(out);
      tone.start();
      tracks.push(...out.stream.getAudioTracks());
    }
    return new MediaStream(tracks);
  };
}

run('mdns', 60_000, async (h) => {
  const hidden = await h.open('mdns', { fakeUi: false });
  await hidden.context.addInitScript(syntheticDevices);
  const { page: plain } = await h.open('plain');
  const hiddenId = await joinAs(hidden.page, link, 'Hidden host');
  const plainId = await joinAs(plain, link, 'Plain host');

  // The premise: the first browser's host candidates are mDNS names.
  const candidates = await poll(
    'mdns: candidates gathered for the publish connection',
    () => hidden.page.evaluate(() => window.confgate.candidates.publish),
    (list) => list.some((c) => / typ host/.test(c)),
    10_000,
  );
  const hosts = candidates.filter((c) => / typ host/.test(c));
  const exposed = hosts.filter((c) => !/\.local /.test(c));
  if (exposed.length) fail(`the premise does not hold: host candidates with addresses: ${exposed.join(' | ')}`);
  log(`mdns browser's host candidates: ${hosts.map((c) => c.split(' ')[4]).join(', ')}`);

  // Both decode each other's video.
  for (const [page, other] of [[hidden.page, plainId], [plain, hiddenId]]) {
    await poll(
      `${page.label}: decoding the other's video`,
      async () => {
        await expectMedia(page);
        return stats(page);
      },
      (s) => (s[other]?.video?.framesDecoded ?? 0) > 0,
      MEDIA_UP_MS,
      250,
    );
  }
  log('both decode each other\'s video');
});
