// The page's one state object, `app`, and the small things every module
// reads from it: the language, the stored preferences, the local tracks.
// Everything the page shows is drawn from `app` (view.js); the protocol and
// the devices change it (join.js).

import { pickLanguage, translate } from './i18n.js';

export const storage = {
  get(key) {
    try { return localStorage.getItem(`confgate.${key}`); } catch { return null; }
  },
  set(key, value) {
    try { localStorage.setItem(`confgate.${key}`, value); } catch { /* private mode */ }
  },
};

export const app = {
  lang: storage.get('lang') || pickLanguage(navigator.languages?.length ? navigator.languages : [navigator.language]),
  // 'lobby' | 'joining' | 'in' | 'left' | 'error'
  state: 'lobby',
  conf: { confId: null, confName: null },
  confState: null,
  // What the lobby says: {key, vars, kind} with kind 'info' or 'error'.
  lobbyMessage: { key: 'lookingUp', vars: {}, kind: 'info' },
  formError: null,
  session: null,
  selfId: null,
  seq: 0,
  synced: false,
  members: new Map(),
  mainVideo: null,
  mainVideoCause: null,
  // A chair's access token, from the chair's link (#chair=…).
  chairToken: null,
  // The codecs of the MCU this conference is bound to (from conference.join),
  // preferred when publishing; null when not bound.
  mcuCodecs: null,
  local: {
    stream: null,
    cameraId: storage.get('camera') || '',
    micId: storage.get('microphone') || '',
    audioMuted: false,
    videoEnabled: true,
    problem: null,
    devices: [],
    // The running openDevices(): joining waits for it.
    opening: null,
    generation: 0,
  },
  // Requests about our own state in flight: the server's echo of an older one
  // must not undo a newer click.
  pending: { audio: 0, video: 0 },
  // Members' streams on the subscribe leg, by userId (never the MCU's).
  remote: new Map(),
  // The SIP/MCU conference system a conference may be bound to. `status`: the
  // last `mcu.state` params ({state, audio, video, reason}), null while none
  // came (the conference is not bound). `stream`: its composed picture and
  // mixed audio (stream id "mcu" on the subscribe leg), or null. `onStage`:
  // whether the stage shows that stream now (kept by the view).
  mcu: { status: null, stream: null, onStage: false },
  socket: null,
  joinedOnce: false,
  reconnectAttempt: 0,
  reconnectTimer: null,
  failedOpens: 0,
  reconnecting: false,
  publish: null,
  // A publish leg whose offer the server refused.
  refusedPublish: null,
  subscribe: null,
  mediaError: null,
  quality: null,
  farewell: null,
  leaving: false,
  ui: { people: false, deviceMenu: false },
};

export function t(key, vars) {
  return translate(app.lang, key, vars);
}

export function videoTrack() {
  return app.local.stream?.getVideoTracks()[0] ?? null;
}

export function audioTrack() {
  return app.local.stream?.getAudioTracks()[0] ?? null;
}
