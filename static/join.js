// The join page: lobby (conference, preview, devices, name), then the
// conference (main video, the others' tiles, member list, own microphone and
// camera), then a farewell. The protocol is docs/api.md's: the join POST, the
// WebSocket with snapshots and numbered events, and two WebRTC legs
// (media.js).
//
// This module holds the protocol and the devices: it changes `app`
// (state.js) and asks view.js to draw it. Strings come from i18n.js by key,
// so switching the language redraws everything.

import { RpcError, RpcSocket } from './rpc.js';
import { MCU_STREAM_ID, PublishLeg, QualityProbe, SubscribeLeg } from './media.js';
import { ICONS } from './icons.js';
import { app, audioTrack, storage, t, videoTrack } from './state.js';
import { h, render, scheduleRender, toast } from './view.js';

const $ = (id) => document.getElementById(id);

// The code is the last part of this page's path.
const CODE = decodeURIComponent(location.pathname.split('/').filter(Boolean).pop() || '');
const CONF_URL = `/gzbwclient/conference/${encodeURIComponent(CODE)}`;

// Reconnect backoff: 0.5 s, 1 s, 2 s, 4 s, then every 5 s.
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 5000;
// Sockets that fail to open this many times in a row get a fresh token first
// (the access token is only checked at the upgrade, and a 401 there looks
// like any other failure to a browser).
const FAILED_OPENS_BEFORE_REFRESH = 2;
// A first join whose socket fails to open this many times goes back to the
// lobby with an error (a proxy that blocks WebSockets, say).
const FAILED_OPENS_BEFORE_GIVING_UP = 4;
// Refresh the access token before a reconnect when it has less than this left.
const TOKEN_MARGIN_MS = 60_000;
const QUALITY_INTERVAL_MS = 2000;
// 640×360: the server forwards each camera as it comes (no simulcast), so
// every member receives every other camera at this size; WebRTC scales down
// further under load.
const VIDEO_CONSTRAINTS = { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 24, max: 30 } };
const AUDIO_CONSTRAINTS = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
// The device choice "none": join without that device.
const NO_DEVICE = 'none';

// ---------------------------------------------------------------- language

function setLanguage(lang) {
  app.lang = lang === 'zh' ? 'zh' : 'en';
  storage.set('lang', app.lang);
  applyLanguage();
}

function applyLanguage() {
  document.documentElement.lang = app.lang === 'zh' ? 'zh-CN' : 'en';
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
  $('lang').setAttribute('aria-label', t('switchToLabel'));
  $('langLabel').textContent = t('switchTo');
  fillDeviceSelects();
  render();
}

// ---------------------------------------------------------------- lobby

async function lookUp() {
  app.lobbyMessage = { key: 'lookingUp', vars: {}, kind: 'info' };
  render();
  let res;
  try {
    res = await fetch(`${CONF_URL}?format=json`, { headers: { Accept: 'application/json' }, cache: 'no-store' });
  } catch (e) {
    showProblem('networkError', { error: e.message });
    return;
  }
  if (res.status === 429) {
    showProblem('throttled', { minutes: retryMinutes(res) });
    return;
  }
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    showProblem('networkError', { error: body.error || `HTTP ${res.status}` });
    return;
  }
  app.conf = { confId: body.confId ?? null, confName: body.confName ?? null };
  showConferenceState(body.state);
}

function retryMinutes(res) {
  const seconds = Number(res.headers.get('Retry-After')) || 60;
  return Math.max(1, Math.ceil(seconds / 60));
}

function showProblem(key, vars) {
  app.state = 'error';
  app.lobbyMessage = { key, vars, kind: 'error' };
  stopLocal();
  render();
}

function showConferenceState(state) {
  app.confState = state;
  if (state === 0) {
    app.state = 'lobby';
    app.lobbyMessage = { key: 'live', vars: {}, kind: 'live' };
    render();
    if (!app.local.stream) app.local.opening = openDevices();
    if (!$('nameInput').value) $('nameInput').value = storage.get('name') || '';
    $('nameInput').focus();
  } else {
    showProblem([30, 31, 32].includes(state) ? `state${state}` : 'state32', {});
  }
}

// Opens the chosen camera and microphone. What it could not open is kept in
// `app.local.problem`, shown in the lobby; joining works with any subset,
// including none (watching only).
async function openDevices() {
  stopLocal();
  const local = app.local;
  // A newer call (another device chosen meanwhile) wins; this one's tracks
  // are then stopped.
  const generation = ++local.generation;
  const wantVideo = local.cameraId !== NO_DEVICE;
  const wantAudio = local.micId !== NO_DEVICE;
  local.problem = null;
  if (!navigator.mediaDevices?.getUserMedia) {
    local.problem = { key: 'insecure' };
    local.stream = new MediaStream();
    render();
    return;
  }
  const video = wantVideo && { ...VIDEO_CONSTRAINTS, ...(local.cameraId ? { deviceId: { exact: local.cameraId } } : {}) };
  const audio = wantAudio && { ...AUDIO_CONSTRAINTS, ...(local.micId ? { deviceId: { exact: local.micId } } : {}) };
  const errors = [];
  const tryOpen = async (constraints) => {
    try {
      return await navigator.mediaDevices.getUserMedia(constraints);
    } catch (e) {
      errors.push(e);
      return null;
    }
  };
  let stream = null;
  if (wantVideo && wantAudio) stream = await tryOpen({ video, audio });
  if (!stream) {
    // One at a time: one device may be missing, busy or blocked while the
    // other works.
    const v = wantVideo ? await tryOpen({ video }) : null;
    const a = wantAudio ? await tryOpen({ audio }) : null;
    stream = new MediaStream([...(v?.getTracks() ?? []), ...(a?.getTracks() ?? [])]);
  }
  if (generation !== local.generation || app.state === 'error' || app.farewell) {
    stream.getTracks().forEach((track) => track.stop());
    return;
  }
  local.stream = stream;
  const missingVideo = wantVideo && stream.getVideoTracks().length === 0;
  const missingAudio = wantAudio && stream.getAudioTracks().length === 0;
  if (missingVideo || missingAudio) local.problem = describeProblem(errors, missingVideo, missingAudio);
  applyLocalEnabled();
  for (const track of stream.getTracks()) {
    track.addEventListener('ended', () => {
      toast('deviceError', { error: track.label || track.kind });
      scheduleRender();
    });
  }
  await listDevices();
  startLevelMeter();
  render();
}

function describeProblem(errors, missingVideo, missingAudio) {
  const names = errors.map((e) => e.name);
  if (names.some((n) => n === 'NotAllowedError' || n === 'SecurityError')) {
    if (missingVideo && missingAudio) return { key: 'deniedBoth', kind: 'denied' };
    return { key: missingVideo ? 'deniedCamera' : 'deniedMicrophone', kind: 'denied' };
  }
  if (names.some((n) => n === 'NotReadableError' || n === 'AbortError')) return { key: 'deviceBusy' };
  if (names.every((n) => n === 'NotFoundError' || n === 'OverconstrainedError')) {
    return { key: 'noDevices', kind: 'missing' };
  }
  return { key: 'deviceError', vars: { error: errors.map((e) => e.message || e.name).join('; ') } };
}

async function listDevices() {
  try {
    app.local.devices = await navigator.mediaDevices.enumerateDevices();
  } catch {
    app.local.devices = [];
  }
  fillDeviceSelects();
}

function currentDeviceId(kind) {
  const track = kind === 'videoinput' ? videoTrack() : audioTrack();
  return track?.getSettings().deviceId || '';
}

function fillDeviceSelects() {
  const fill = (select, kind, withNone) => {
    const chosen = kind === 'videoinput' ? app.local.cameraId : app.local.micId;
    const current = chosen === NO_DEVICE ? NO_DEVICE : currentDeviceId(kind) || chosen;
    const devices = app.local.devices.filter((d) => d.kind === kind && d.deviceId);
    select.replaceChildren(
      ...devices.map((d, i) =>
        h('option', { value: d.deviceId, selected: d.deviceId === current }, d.label || `${t(kind === 'videoinput' ? 'camera' : 'microphone')} ${i + 1}`)),
      ...(withNone ? [h('option', { value: NO_DEVICE, selected: current === NO_DEVICE }, t('noDevice'))] : []),
    );
  };
  fill($('cameraSelect'), 'videoinput', true);
  fill($('micSelect'), 'audioinput', true);
  fill($('roomCameraSelect'), 'videoinput', false);
  fill($('roomMicSelect'), 'audioinput', false);
}

function applyLocalEnabled() {
  const audio = audioTrack();
  const video = videoTrack();
  if (audio) audio.enabled = !app.local.audioMuted;
  if (video) video.enabled = app.local.videoEnabled;
}

function stopLocal() {
  stopLevelMeter();
  app.local.stream?.getTracks().forEach((track) => track.stop());
  app.local.stream = null;
}

// The microphone level under the preview, so a person sees the microphone
// works before joining.
const meter = { context: null, analyser: null, frame: 0, data: null };

function startLevelMeter() {
  stopLevelMeter();
  const track = audioTrack();
  if (!track || !window.AudioContext) return;
  try {
    meter.context = new AudioContext();
    const source = meter.context.createMediaStreamSource(new MediaStream([track]));
    meter.analyser = meter.context.createAnalyser();
    meter.analyser.fftSize = 512;
    meter.data = new Uint8Array(meter.analyser.fftSize);
    source.connect(meter.analyser);
  } catch {
    stopLevelMeter();
    return;
  }
  const bar = $('micLevel').firstElementChild;
  const tick = () => {
    meter.analyser.getByteTimeDomainData(meter.data);
    let peak = 0;
    for (const v of meter.data) peak = Math.max(peak, Math.abs(v - 128));
    const level = app.local.audioMuted ? 0 : Math.min(1, peak / 64);
    // Until a click lets audio run, the meter would sit at zero: hide it.
    $('micLevel').classList.toggle('idle', meter.context?.state !== 'running');
    bar.style.transform = `scaleX(${level.toFixed(3)})`;
    meter.frame = requestAnimationFrame(tick);
  };
  meter.frame = requestAnimationFrame(tick);
}

function stopLevelMeter() {
  cancelAnimationFrame(meter.frame);
  meter.context?.close().catch(() => {});
  meter.context = null;
  meter.analyser = null;
}

// Browsers start audio only after a gesture; any click resumes what waits.
function resumeAudio() {
  meter.context?.resume().catch(() => {});
  for (const el of $('audioSinks').querySelectorAll('audio')) if (el.paused) el.play().catch(() => {});
}

// ---------------------------------------------------------------- joining

async function join(event) {
  event.preventDefault();
  const name = $('nameInput').value.trim();
  if (!name) {
    app.formError = { key: 'nameRequired' };
    render();
    $('nameInput').focus();
    return;
  }
  storage.set('name', name);
  app.formError = null;
  app.state = 'joining';
  render();
  let res;
  let body;
  try {
    res = await fetch(CONF_URL, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        Accept: 'application/json',
        // A chair's link carries its access token: it joins as itself.
        ...(app.chairToken ? { Authorization: `Bearer ${app.chairToken}` } : {}),
      },
      body: JSON.stringify({ name }),
    });
    body = await res.json().catch(() => ({}));
  } catch (e) {
    backToLobby({ key: 'networkError', vars: { error: e.message } });
    return;
  }
  if (res.status === 429) {
    backToLobby({ key: 'throttled', vars: { minutes: retryMinutes(res) } });
    return;
  }
  if (!res.ok) {
    backToLobby({ key: 'joinFailed', vars: { error: body.error || `HTTP ${res.status}` } });
    return;
  }
  if (!body.accessToken) {
    showConferenceState(body.state);
    return;
  }
  app.session = body;
  app.selfId = body.userId;
  app.conf = { confId: body.confId, confName: body.confName ?? app.conf.confName };
  await app.local.opening;
  stopLevelMeter();
  if (!audioTrack()) app.local.audioMuted = true;
  if (!videoTrack()) app.local.videoEnabled = false;
  connect();
}

function backToLobby(formError) {
  app.state = 'lobby';
  app.formError = formError;
  render();
}

function connect() {
  clearTimeout(app.reconnectTimer);
  const params = new URLSearchParams({ token: app.session.accessToken });
  if (app.conf.confId) params.set('confId', app.conf.confId);
  if (app.synced) params.set('lastSeq', String(app.seq));
  // Another node serves this conference when the join said so (`gateway`).
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const base = /^wss?:\/\/[^/]+$/.test(app.session.gateway ?? '') ? app.session.gateway : `${scheme}://${location.host}`;
  const socket = new RpcSocket(`${base}/gzbwclient/websck?${params}`, {
    onOpen: () => enter(socket),
    onNotification: (method, p) => onNotification(socket, method, p),
    onClose: (info) => onSocketClosed(socket, info),
  });
  app.socket = socket;
}

// The socket is open: join (again).
async function enter(socket) {
  app.failedOpens = 0;
  let result;
  try {
    result = await socket.request('conference.join', {
      audioMuted: app.local.audioMuted,
      videoEnabled: app.local.videoEnabled,
    });
  } catch (e) {
    if (socket !== app.socket || e.code === 'closed') return;
    if (e.code === 'timeout') {
      // As if the connection had dropped: a new one, and a new try.
      socket.socket.close(4002, 'join timed out');
      return;
    }
    if (e.code === 403) {
      await conferenceGone();
    } else {
      endVisit('farewellClosed', { reason: e.message });
    }
    return;
  }
  if (socket !== app.socket || app.farewell) return;
  const member = result.member;
  // Bound to an MCU: publish in its codecs (see preferCodecs).
  app.mcuCodecs = Array.isArray(result.mcu?.codecs) ? result.mcu.codecs : null;
  if (member) app.members.set(member.userId, { ...app.members.get(member.userId), ...member });
  const first = !app.joinedOnce;
  app.joinedOnce = true;
  app.reconnectAttempt = 0;
  app.state = 'in';
  if (app.reconnecting) toast('reconnected');
  app.reconnecting = false;
  render();
  // What changed while we were away (a click while disconnected).
  if (member && member.audioMuted !== app.local.audioMuted) sendOwnState('audio');
  if (member && member.videoEnabled !== app.local.videoEnabled) sendOwnState('video');
  if (first) {
    startQualityProbe();
    startPublishing();
  } else {
    resumeMedia();
  }
}

function onNotification(socket, method, params) {
  if (socket !== app.socket) return;
  switch (method) {
    case 'conference.snapshot':
      applySnapshot(params);
      break;
    case 'conference.event':
      applyEvent(params);
      break;
    case 'media.offer':
      subscribeLeg()
        ?.handleOffer(params.sdp)
        .catch((e) => console.warn('confgate: cannot answer the server offer', e));
      break;
    case 'media.candidate': {
      const leg = params.leg === 'publish' ? app.publish : subscribeLeg();
      leg?.addRemoteCandidate(params.candidate);
      break;
    }
    case 'session.closed':
      onSessionClosed(String(params.reason ?? ''));
      break;
    case 'mcu.state':
      applyMcuState(params);
      break;
    default:
      console.debug('confgate: unknown notification', method);
  }
  scheduleRender();
}

function applySnapshot(s) {
  app.members = new Map((s.members || []).map((m) => [m.userId, { ...m }]));
  app.mainVideo = s.mainVideo ?? null;
  app.mainVideoCause = s.mainVideoCause ?? null;
  app.seq = s.seq;
  app.synced = true;
  if (s.confName) app.conf.confName = s.confName;
  for (const userId of app.remote.keys()) if (!app.members.has(userId)) app.remote.delete(userId);
  if (s.state === 31) endVisit('farewellEnded');
}

function applyEvent(e) {
  if (app.synced && e.seq <= app.seq) return;
  if (app.synced && e.seq !== app.seq + 1) {
    // The server promises no gaps; if one shows, start over from a snapshot.
    console.warn(`confgate: event ${e.seq} after ${app.seq}; resynchronising`);
    app.synced = false;
    app.socket?.socket.close(4000, 'resync');
    return;
  }
  app.seq = e.seq;
  switch (e.type) {
    case 'memberJoined':
      app.members.set(e.member.userId, { ...e.member });
      break;
    case 'memberLeft':
      app.members.delete(e.userId);
      app.remote.delete(e.userId);
      if (e.userId === app.selfId && e.reason === 'removed') endVisit('farewellRemoved');
      if (e.userId === app.selfId && e.reason === 'conferenceEnded') endVisit('farewellEnded');
      break;
    case 'memberUpdated': {
      const member = app.members.get(e.userId);
      if (!member) break;
      const { audioMuted, videoEnabled, speaking, role, connected } = e;
      Object.assign(member, { audioMuted, videoEnabled, speaking, role, connected });
      if (e.userId === app.selfId) followOwnState(member);
      break;
    }
    case 'mainVideoChanged':
      app.mainVideo = e.userId ?? null;
      app.mainVideoCause = e.cause ?? null;
      break;
    case 'conferenceStateChanged':
      if (e.state === 31) endVisit('farewellEnded');
      break;
    default:
      console.debug('confgate: unknown event', e.type);
  }
}

// The server says how we are: a chair may have muted us. The page follows a
// mute, but never turns the microphone on by itself: if the server says
// unmuted while the person muted, the page says muted again.
function followOwnState(member) {
  if (app.pending.audio > 0 || member.audioMuted === app.local.audioMuted) return;
  if (member.audioMuted) {
    app.local.audioMuted = true;
    applyLocalEnabled();
    toast('mutedByChair');
  } else {
    sendOwnState('audio');
  }
}

// The conference system (MCU) this conference is bound to: `calling`,
// `connected` (with the bridged codecs, `audio`/`video`, null for a kind not
// bridged), `failed` or `ended` (with the server's English `reason`). The
// server repeats the latest one after a reconnect; the last one wins. Its
// media comes as the subscribe leg's stream "mcu" (onMcuTrack).
function applyMcuState(params) {
  if (typeof params?.state !== 'string') {
    console.debug('confgate: mcu.state without a state', params);
    return;
  }
  const status = {
    state: params.state,
    audio: params.audio ?? null,
    video: params.video ?? null,
    reason: typeof params.reason === 'string' && params.reason ? params.reason : null,
  };
  const previous = app.mcu.status?.state;
  app.mcu.status = status;
  if (previous !== status.state) {
    console.info(`confgate: MCU ${status.state}${status.reason ? ` (${status.reason})` : ''}`);
  }
}

function onSessionClosed(reason) {
  // The reason is the server's English text; these are the final ones.
  if (/replaced/i.test(reason)) endVisit('farewellReplaced');
  else if (/removed/i.test(reason)) endVisit('farewellRemoved');
  else if (/ended/i.test(reason)) endVisit('farewellEnded');
  else if (/^left/i.test(reason)) endVisit('farewellLeft');
  else console.info('confgate: the server closes the connection:', reason);
}

function onSocketClosed(socket, { opened }) {
  if (socket !== app.socket) return;
  app.socket = null;
  if (app.farewell) return;
  app.failedOpens = opened ? 0 : app.failedOpens + 1;
  if (!app.joinedOnce && app.failedOpens >= FAILED_OPENS_BEFORE_GIVING_UP) {
    // Never got in: say so in the lobby rather than retry forever.
    app.session = null;
    app.synced = false;
    app.reconnectAttempt = 0;
    backToLobby({ key: 'joinFailed', vars: { error: t('socketFailed') } });
    return;
  }
  app.reconnecting = true;
  const delay = Math.min(BACKOFF_FIRST_MS * 2 ** app.reconnectAttempt, BACKOFF_MAX_MS);
  app.reconnectAttempt += 1;
  clearTimeout(app.reconnectTimer);
  app.reconnectTimer = setTimeout(reconnect, delay);
  render();
}

async function reconnect() {
  if (app.farewell) return;
  const expiring = (app.session.deadline ?? Infinity) - Date.now() < TOKEN_MARGIN_MS;
  // Decided before the refresh, which counts the failures anew.
  const stuck = app.failedOpens >= FAILED_OPENS_BEFORE_REFRESH;
  if (expiring || stuck) {
    try {
      await refreshToken();
    } catch (e) {
      if (e.code === 401 || e.code === 404) {
        await conferenceGone();
        return;
      }
      // Unreachable server: try the socket anyway, with backoff.
    }
  }
  // Another node may serve the conference now (the one we were on stopped):
  // ask where to go.
  if (stuck) await findGateway();
  if (!app.farewell) connect();
}

// Where the conference is served now. The page's own server is asked first;
// when it is gone too, the other nodes of the pool the join named.
async function findGateway() {
  const own = `${location.protocol}//${location.host}`;
  const others = (app.session.pool ?? [])
    .map((g) => /^wss?:\/\/[^/]+$/.test(g) ? g.replace(/^ws/, 'http') : null)
    .filter((o) => o && o !== own);
  for (const origin of [own, ...others]) {
    try {
      const res = await fetch(`${origin}${CONF_URL}?format=json`, {
        headers: { Accept: 'application/json' },
        cache: 'no-store',
        signal: AbortSignal.timeout(5000),
      });
      if (!res.ok) {
        console.info(`confgate: ${origin} cannot say where the conference is: HTTP ${res.status}`);
        continue;
      }
      const body = await res.json();
      if (body.state !== 0) return;
      // The answering node serves it unless it names another gateway.
      const gateway = typeof body.gateway === 'string'
        ? body.gateway
        : (origin === own ? undefined : origin.replace(/^http/, 'ws'));
      if (gateway !== app.session.gateway) {
        console.info(`confgate: the conference moved to ${gateway ?? location.host}`);
        app.session.gateway = gateway;
      }
      return;
    } catch (e) {
      // That server is unreachable too: ask the next one.
      console.info(`confgate: cannot ask ${origin} where the conference is`, e.message);
    }
  }
}

async function refreshToken() {
  const res = await fetch('/gzbwclient/jsonrpc', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'auth.http.login',
      params: { grantType: 'refresh_token', refreshToken: app.session.refreshToken },
    }),
  });
  const body = await res.json();
  if (body.error) throw new RpcError(body.error.code, body.error.message, body.error.data);
  Object.assign(app.session, {
    accessToken: body.result.accessToken,
    refreshToken: body.result.refreshToken,
    deadline: body.result.deadline,
  });
  app.failedOpens = 0;
}

// The server will not have us back: ended, or our account is gone.
async function conferenceGone() {
  try {
    const res = await fetch(`${CONF_URL}?format=json`, { headers: { Accept: 'application/json' }, cache: 'no-store' });
    const body = await res.json();
    endVisit(body.state === 31 ? 'farewellEnded' : 'farewellExpired');
  } catch {
    endVisit('farewellExpired');
  }
}

// The end of this visit to the conference, with the reason shown.
function endVisit(key, vars = {}) {
  if (app.farewell) return;
  app.farewell = { key, vars };
  app.state = key === 'farewellExpired' || key === 'farewellClosed' ? 'error' : 'left';
  clearTimeout(app.reconnectTimer);
  app.socket?.close();
  app.socket = null;
  app.publish?.close();
  app.refusedPublish?.close();
  app.subscribe?.close();
  app.publish = null;
  app.refusedPublish = null;
  app.subscribe = null;
  stopQualityProbe();
  stopLocal();
  app.remote.clear();
  app.mcu.stream = null;
  $('audioSinks').replaceChildren();
  render();
}

async function leave() {
  if (app.leaving) return;
  app.leaving = true;
  const socket = app.socket;
  if (socket) {
    // A short wait: leaving must feel instant, and the grace period covers a
    // leave that never arrived.
    await socket.request('conference.leave', {}, 2000).catch(() => {});
  }
  endVisit('farewellLeft');
}

// ---------------------------------------------------------------- own microphone and camera

// A chair pins a member as everyone's main video, or unpins them.
async function togglePin(userId) {
  const socket = app.socket;
  if (app.state !== 'in' || !socket) return;
  const pinned = app.mainVideo === userId && app.mainVideoCause === 'pinned';
  try {
    await socket.request('conference.setMainVideo', { userId: pinned ? null : userId });
  } catch (e) {
    toast('requestFailed', { error: e.message });
  }
}

async function toggleAudio() {
  if (!audioTrack()) return;
  app.local.audioMuted = !app.local.audioMuted;
  applyLocalEnabled();
  render();
  await sendOwnState('audio');
}

async function toggleVideo() {
  if (!videoTrack()) return;
  app.local.videoEnabled = !app.local.videoEnabled;
  applyLocalEnabled();
  render();
  await sendOwnState('video');
}

async function sendOwnState(kind) {
  const socket = app.socket;
  if (app.state !== 'in' || !socket) return; // sent at the next join
  const [method, params] = kind === 'audio'
    ? ['conference.setAudio', { muted: app.local.audioMuted }]
    : ['conference.setVideo', { enabled: app.local.videoEnabled }];
  app.pending[kind] += 1;
  try {
    await socket.request(method, params);
  } catch (e) {
    if (e.code !== 'closed') toast('requestFailed', { error: e.message });
  } finally {
    app.pending[kind] -= 1;
  }
}

// A device chosen in the conference: the new track replaces the old one in
// the preview and on the publish leg.
async function switchDevice(kind, deviceId) {
  const isVideo = kind === 'videoinput';
  const constraints = isVideo
    ? { video: { ...VIDEO_CONSTRAINTS, deviceId: { exact: deviceId } } }
    : { audio: { ...AUDIO_CONSTRAINTS, deviceId: { exact: deviceId } } };
  let fresh;
  try {
    fresh = (await navigator.mediaDevices.getUserMedia(constraints)).getTracks()[0];
  } catch (e) {
    toast('deviceError', { error: e.message || e.name });
    return;
  }
  storage.set(isVideo ? 'camera' : 'microphone', deviceId);
  if (isVideo) app.local.cameraId = deviceId;
  else app.local.micId = deviceId;
  const stream = app.local.stream ?? (app.local.stream = new MediaStream());
  const old = isVideo ? videoTrack() : audioTrack();
  if (old) {
    stream.removeTrack(old);
    old.stop();
  }
  stream.addTrack(fresh);
  applyLocalEnabled();
  if (app.publish && old) {
    await app.publish.replaceTrack(fresh).catch((e) => console.warn('confgate: replaceTrack', e));
  } else if (app.state === 'in') {
    // A kind the publish leg did not carry: negotiate it anew.
    startPublishing();
  }
  fillDeviceSelects();
  render();
}

// ---------------------------------------------------------------- media

function mediaRequest(method, params) {
  return app.socket ? app.socket.request(method, params) : Promise.reject(new RpcError('closed', 'not connected'));
}

function subscribeLeg() {
  if (!app.subscribe && !app.farewell) {
    app.subscribe = new SubscribeLeg({ request: mediaRequest, onTrack: onRemoteTrack, onIceState: scheduleRender });
  }
  return app.subscribe;
}

async function startPublishing() {
  const stream = app.local.stream;
  app.publish?.close();
  app.publish = null;
  app.refusedPublish?.close();
  app.refusedPublish = null;
  if (!stream || stream.getTracks().length === 0) return; // watching only
  const leg = new PublishLeg({
    request: mediaRequest,
    onIceState: scheduleRender,
    codecs: () => app.mcuCodecs,
  });
  app.publish = leg;
  try {
    await leg.start(stream);
    app.mediaError = null;
  } catch (e) {
    if (leg !== app.publish) return;
    app.publish = null;
    if (e.code === 'closed' || e.code === 'timeout') {
      leg.close();
      return; // tried again after the reconnect
    }
    // Kept (idle) until the next try, so its gathered candidates stay visible.
    app.refusedPublish = leg;
    app.mediaError = e.message || String(e);
    console.warn('confgate: media unavailable:', app.mediaError);
    toast('mediaUnavailable', {}, { sticky: true, id: 'media' });
  }
  render();
}

// After a reconnect: whatever media did not survive is set up again.
function resumeMedia() {
  if (!app.publish) startPublishing();
  else if (app.publish.unhealthy) app.publish.restartIce().catch((e) => console.warn('confgate: publish restart', e));
  if (app.subscribe?.unhealthy) app.subscribe.restartIce().catch((e) => console.warn('confgate: subscribe restart', e));
}

function onRemoteTrack(ownerId, track, stream) {
  if (ownerId === MCU_STREAM_ID) {
    onMcuTrack(track, stream);
    return;
  }
  const userId = ownerId;
  app.remote.set(userId, stream);
  for (const type of ['mute', 'unmute', 'ended']) track.addEventListener(type, scheduleRender);
  stream.addEventListener('removetrack', scheduleRender);
  scheduleRender();
}

// A track of the conference system's stream: kept apart from the members'
// (never a tile, never in app.remote). The view shows its picture on the stage
// while the MCU call is connected, and always plays its audio.
function onMcuTrack(track, stream) {
  app.mcu.stream = stream;
  for (const type of ['mute', 'unmute', 'ended']) track.addEventListener(type, scheduleRender);
  stream.addEventListener('removetrack', () => {
    // The server took the MCU's tracks away: back to members only.
    if (app.mcu.stream === stream && stream.getTracks().length === 0) app.mcu.stream = null;
    scheduleRender();
  });
  scheduleRender();
}

const probe = new QualityProbe();
let qualityTimer = 0;

function startQualityProbe() {
  stopQualityProbe();
  qualityTimer = setInterval(updateQuality, QUALITY_INTERVAL_MS);
  updateQuality();
}

function stopQualityProbe() {
  clearInterval(qualityTimer);
  app.quality = null;
}

async function updateQuality() {
  const others = [...app.members.keys()].some((id) => id !== app.selfId);
  const pc = app.subscribe?.pc ?? app.publish?.pc ?? null;
  if (app.mediaError && !app.subscribe) {
    app.quality = { level: 0, key: 'mediaOff' };
  } else if (!pc) {
    app.quality = others || app.publish ? { level: 0, key: 'connecting' } : null;
  } else {
    let sample = null;
    try {
      sample = await probe.sample(pc);
    } catch {
      sample = null;
    }
    if (!sample) {
      app.quality = { level: 0, key: 'connecting' };
    } else {
      const rtt = sample.rttMs ?? 0;
      const loss = sample.lossPercent;
      const level = loss < 2 && rtt < 200 ? 3 : loss < 8 && rtt < 500 ? 2 : 1;
      app.quality = {
        level,
        key: ['connecting', 'qualityPoor', 'qualityFair', 'qualityGood'][level],
        rttMs: sample.rttMs,
        lossPercent: loss,
      };
    }
  }
  scheduleRender();
}

// ---------------------------------------------------------------- wiring

function wire() {
  for (const el of document.querySelectorAll('[data-icon]')) el.innerHTML = ICONS[el.dataset.icon] ?? '';
  $('lang').addEventListener('click', () => setLanguage(app.lang === 'zh' ? 'en' : 'zh'));
  $('joinForm').addEventListener('submit', join);
  $('retryButton').addEventListener('click', lookUp);
  $('rejoinButton').addEventListener('click', () => location.reload());
  $('nameInput').addEventListener('input', () => {
    if (app.formError) {
      app.formError = null;
      render();
    }
  });
  $('previewMic').addEventListener('click', () => {
    app.local.audioMuted = !app.local.audioMuted;
    applyLocalEnabled();
    render();
  });
  $('previewCam').addEventListener('click', () => {
    app.local.videoEnabled = !app.local.videoEnabled;
    applyLocalEnabled();
    render();
  });
  $('cameraSelect').addEventListener('change', (e) => {
    app.local.cameraId = e.target.value;
    storage.set('camera', e.target.value);
    app.local.opening = openDevices();
  });
  $('micSelect').addEventListener('change', (e) => {
    app.local.micId = e.target.value;
    storage.set('microphone', e.target.value);
    app.local.opening = openDevices();
  });
  $('roomCameraSelect').addEventListener('change', (e) => switchDevice('videoinput', e.target.value));
  $('roomMicSelect').addEventListener('change', (e) => switchDevice('audioinput', e.target.value));
  $('micButton').addEventListener('click', toggleAudio);
  $('memberList').addEventListener('click', (event) => {
    const button = event.target.closest('button[data-pin]');
    if (button) togglePin(button.dataset.pin);
  });
  $('camButton').addEventListener('click', toggleVideo);
  $('leaveButton').addEventListener('click', leave);
  $('devicesButton').addEventListener('click', (e) => {
    e.stopPropagation();
    app.ui.deviceMenu = !app.ui.deviceMenu;
    render();
  });
  $('deviceMenu').addEventListener('click', (e) => e.stopPropagation());
  $('peopleButton').addEventListener('click', () => {
    app.ui.people = !app.ui.people;
    render();
  });
  $('peopleClose').addEventListener('click', () => {
    app.ui.people = false;
    render();
  });
  document.addEventListener('click', () => {
    if (app.ui.deviceMenu) {
      app.ui.deviceMenu = false;
      render();
    }
  });
  document.addEventListener('pointerdown', resumeAudio);
  document.addEventListener('keydown', resumeAudio);
  navigator.mediaDevices?.addEventListener?.('devicechange', listDevices);
}

// For tests and for anyone curious in the console.
window.confgate = {
  get state() { return app.state; },
  get members() { return app.members; },
  get mainVideo() { return app.mainVideo; },
  get selfId() { return app.selfId; },
  // Where the WebSocket is (another node's gateway when that node serves the conference).
  get socketUrl() { return app.socket?.socket?.url ?? null; },
  get seq() { return app.seq; },
  // True from a dropped WebSocket until the page is back in the conference.
  get reconnecting() { return app.reconnecting; },
  get lang() { return app.lang; },
  get confState() { return app.confState; },
  get lobbyMessage() { return app.lobbyMessage.key; },
  get deviceProblem() { return app.local.problem?.key ?? null; },
  get mediaError() { return app.mediaError; },
  get farewell() { return app.farewell?.key ?? null; },
  get quality() { return app.quality; },
  get candidates() {
    const publish = app.publish ?? app.refusedPublish;
    return { publish: publish?.gathered ?? [], subscribe: app.subscribe?.gathered ?? [] };
  },
  get iceStates() {
    return { publish: app.publish?.iceState ?? null, subscribe: app.subscribe?.iceState ?? null };
  },
  setLanguage,
  get mainVideoCause() { return app.mainVideoCause; },
  // What the chair's pin button in the member list does.
  pin: togglePin,
  // The last `mcu.state` params, {state, audio, video, reason} (`audio`,
  // `video`, `reason` null when absent), or null while none came (the
  // conference is not bound to a conference system).
  get mcuState() { return app.mcu.status; },
  // True while the stage (#mainVideo) shows the conference system's stream
  // (stream id "mcu") instead of a member.
  get mcuMain() { return app.mcu.onStage; },
  // From the subscribe connection's inbound-rtp stats, per remote member by
  // userId: {audio: {packetsReceived}, video: {framesDecoded, packetsReceived}}.
  // Plus, once any of the conference system's stream has arrived on the
  // current subscribe connection, the key `mcu` with the same shape (no
  // member has that userId):
  //   {<userId>: COUNTERS, …, mcu?: {audio: {packetsReceived},
  //                                   video: {framesDecoded, packetsReceived}}}
  async stats() {
    if (!app.subscribe) return {};
    const { members, mcu } = await app.subscribe.receiveStats();
    return mcu ? { ...members, mcu } : members;
  },
  // What the publish connection sends, by kind: {codec, packetsSent,
  // framesEncoded, keyFramesEncoded, pliCount}; {} before it publishes.
  async publishStats() {
    const pc = app.publish?.pc;
    if (!pc) return {};
    const report = await pc.getStats();
    const out = {};
    report.forEach((r) => {
      if (r.type !== 'outbound-rtp') return;
      out[r.kind] = {
        codec: report.get(r.codecId)?.mimeType ?? null,
        packetsSent: r.packetsSent ?? 0,
        framesEncoded: r.framesEncoded ?? 0,
        keyFramesEncoded: r.keyFramesEncoded ?? 0,
        pliCount: r.pliCount ?? 0,
      };
    });
    return out;
  },
  // Drops the WebSocket as a network failure would (for reconnect tests).
  dropConnection() {
    app.socket?.socket.close(4001, 'dropped on purpose');
  },
};

// A chair's link: …/conference/CODE#chair=ACCESS_TOKEN. The token is kept for
// this tab only and taken out of the address bar.
{
  const chair = new URLSearchParams(location.hash.slice(1)).get('chair');
  if (chair) {
    sessionStorage.setItem('confgate.chairToken', chair);
    history.replaceState(null, '', location.pathname + location.search);
  }
  app.chairToken = sessionStorage.getItem('confgate.chairToken');
}

wire();
applyLanguage();
lookUp();
