// Drawing: everything the page shows comes from `app` here. Elements that
// hold video are kept between draws (keyed by user id), so that a redraw
// never restarts a picture.

import { ICONS, signalBars } from './icons.js';
import { app, audioTrack, t, videoTrack } from './state.js';

const $ = (id) => document.getElementById(id);

// Long enough to read two lines; a notice that must stay is sticky.
const TOAST_MS = 6000;

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value == null) continue;
    if (name === 'class') el.className = value;
    else if (name === 'html') el.innerHTML = value;
    else el.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function setIconButton(button, icon, label, { pressed, disabled } = {}) {
  button.innerHTML = `${ICONS[icon]}<span class="control-label"></span>`;
  button.querySelector('.control-label').textContent = label;
  button.title = label;
  button.setAttribute('aria-label', label);
  if (pressed !== undefined) button.setAttribute('aria-pressed', String(pressed));
  button.disabled = Boolean(disabled);
}

export function attach(video, stream) {
  if (video.srcObject !== stream) video.srcObject = stream;
  if (stream && video.paused) video.play().catch(() => {});
}

// Puts `child` at `index` among `parent`'s children, moving it only when it is
// elsewhere (a moved video element may stutter).
export function placeAt(parent, child, index) {
  if (parent.children[index] !== child) parent.insertBefore(child, parent.children[index] ?? null);
}

export function avatarUrl(userId) {
  return `/gzbwclient/avatar/${encodeURIComponent(userId)}`;
}

let renderQueued = false;
export function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    render();
  });
}

export function toast(key, vars, { sticky = false, id } = {}) {
  const box = $('toasts');
  if (id && box.querySelector(`[data-toast="${id}"]`)) return;
  const close = h('button', { type: 'button', class: 'toast-close', 'aria-label': t('close'), html: ICONS.close });
  const el = h('div', { class: 'toast', 'data-toast': id || key, 'data-key': key }, h('span', {}, t(key, vars)), close);
  const remove = () => el.remove();
  close.addEventListener('click', remove);
  box.append(el);
  if (!sticky) setTimeout(remove, TOAST_MS);
}

export function render() {
  const view = app.farewell ? 'farewell' : ['in'].includes(app.state) || app.joinedOnce ? 'room' : 'lobby';
  document.body.dataset.view = view;
  document.body.dataset.state = app.state;
  $('lobby').hidden = view !== 'lobby';
  $('room').hidden = view !== 'room';
  $('farewell').hidden = view !== 'farewell';
  const confName = app.conf.confName;
  document.title = confName ? `${confName} · ${t('pageTitle')}` : t('pageTitle');
  $('topTitle').textContent = view === 'room' ? confName ?? '' : '';
  if (view === 'lobby') renderLobby();
  if (view === 'room') renderRoom();
  if (view === 'farewell') renderFarewell();
  if (view !== 'room') app.mcu.onStage = false;
  renderQuality(view);
  const banner = $('banner');
  banner.hidden = !(app.reconnecting && view === 'room');
  if (!banner.hidden) banner.innerHTML = `${ICONS.reconnecting}<span></span>`;
  if (!banner.hidden) banner.querySelector('span').textContent = t('socketLost');
}

function renderLobby() {
  const live = app.confState === 0;
  const name = $('confName');
  if (app.conf.confName) name.textContent = app.conf.confName;
  else if (app.state === 'error') name.textContent = t('pageTitle');
  const message = app.lobbyMessage;
  const state = $('lobbyState');
  state.textContent = t(message.key, message.vars);
  state.dataset.key = message.key;
  state.dataset.kind = message.kind;
  $('joinForm').hidden = !live;
  $('previewPane').hidden = !live;
  $('lobby').classList.toggle('no-preview', !live);
  $('retryButton').hidden = !(app.state === 'error' && ['state30', 'networkError', 'throttled'].includes(message.key));
  const joining = app.state === 'joining';
  const button = $('joinButton');
  button.disabled = joining;
  button.textContent = t(joining ? 'joining' : 'join');
  for (const id of ['nameInput', 'cameraSelect', 'micSelect']) $(id).disabled = joining;

  const formError = $('formError');
  formError.hidden = !app.formError;
  if (app.formError) {
    formError.textContent = t(app.formError.key, app.formError.vars);
    formError.dataset.key = app.formError.key;
  }

  const local = app.local;
  const notice = $('deviceNotice');
  const receiveOnly = local.stream && !audioTrack() && !videoTrack();
  const problem = local.problem ?? (receiveOnly ? { key: 'joinAsViewer' } : null);
  notice.hidden = !problem;
  if (problem) {
    notice.textContent = t(problem.key, problem.vars);
    notice.dataset.key = problem.key;
  }

  const video = videoTrack();
  const showVideo = Boolean(video && local.videoEnabled);
  attach($('previewVideo'), showVideo ? local.stream : null);
  $('previewVideo').hidden = !showVideo;
  $('previewOff').hidden = showVideo || !local.stream;
  $('preview').classList.toggle('loading', !local.stream);
  const audio = audioTrack();
  setIconButton($('previewMic'), local.audioMuted || !audio ? 'micOff' : 'mic', t(local.audioMuted ? 'unmute' : 'mute'), {
    pressed: local.audioMuted, disabled: !audio || joining,
  });
  setIconButton($('previewCam'), local.videoEnabled && video ? 'camera' : 'cameraOff', t(local.videoEnabled ? 'cameraOff' : 'cameraOn'), {
    pressed: !local.videoEnabled, disabled: !video || joining,
  });
  $('previewMic').classList.toggle('off', local.audioMuted || !audio);
  $('previewCam').classList.toggle('off', !local.videoEnabled || !video);
  $('micLevel').hidden = !audio;
}

// Keyed elements, kept between renders so videos do not restart.
const tiles = new Map();
const listItems = new Map();
const audioSinks = new Map();

function memberFlags(el, m) {
  el.dataset.userId = m.userId;
  el.dataset.audioMuted = String(Boolean(m.audioMuted));
  el.dataset.videoEnabled = String(Boolean(m.videoEnabled));
  el.dataset.speaking = String(Boolean(m.speaking));
  el.dataset.connected = String(m.connected !== false);
  el.dataset.role = m.role ?? 'member';
}

// Name and indicators, as on tiles, the stage and the member list.
function indicators(m, { self = false } = {}) {
  const out = [];
  if (m.role === 'chair') out.push(h('span', { class: 'ind chair', title: t('chair'), html: ICONS.chair }));
  out.push(h('span', { class: 'name' }, m.name ?? '', self ? h('span', { class: 'you' }, t('youSuffix')) : null));
  if (m.connected === false) {
    out.push(h('span', { class: 'ind reconnecting', title: t('reconnecting'), html: ICONS.reconnecting }));
  }
  if (m.speaking && !m.audioMuted) out.push(h('span', { class: 'ind speaking', title: t('speaking'), html: ICONS.speaking }));
  out.push(h('span', {
    class: `ind mic ${m.audioMuted ? 'off' : 'on'}`, title: t(m.audioMuted ? 'micMuted' : 'micOn'),
    html: ICONS[m.audioMuted ? 'micOff' : 'mic'],
  }));
  out.push(h('span', {
    class: `ind cam ${m.videoEnabled ? 'on' : 'off'}`, title: t(m.videoEnabled ? 'camOn' : 'camOff'),
    html: ICONS[m.videoEnabled ? 'camera' : 'cameraOff'],
  }));
  return out;
}

function remoteVideoStream(m) {
  const stream = app.remote.get(m.userId);
  if (!stream || !m.videoEnabled) return null;
  const track = stream.getVideoTracks()[0];
  return track && track.readyState === 'live' ? stream : null;
}

// The conference system's stream, when the stage shows it: while the MCU call
// is connected and its stream has a picture (a live video track that has had
// packets; a track the server took away is muted or gone). Otherwise null, and
// the stage is as without an MCU.
function mcuStageStream() {
  const stream = app.mcu.stream;
  if (!stream || app.mcu.status?.state !== 'connected') return null;
  const live = stream.getVideoTracks().some((track) => track.readyState === 'live' && !track.muted);
  return live ? stream : null;
}

// Takes a member's data attributes off the stage while it shows the MCU.
function clearMemberFlags(el) {
  for (const name of ['userId', 'audioMuted', 'videoEnabled', 'speaking', 'connected', 'role']) delete el.dataset[name];
}

// The member shown large: the conference's main video; when there is none,
// the first other member; when alone, oneself.
function stageMember() {
  const main = app.mainVideo && app.members.get(app.mainVideo);
  if (main) return main;
  const others = [...app.members.values()].filter((m) => m.userId !== app.selfId);
  return others[0] ?? app.members.get(app.selfId) ?? null;
}

function selfMember() {
  const known = app.members.get(app.selfId);
  return {
    userId: app.selfId,
    name: known?.name ?? app.session?.name ?? '',
    role: known?.role ?? 'member',
    speaking: known?.speaking ?? false,
    connected: !app.reconnecting,
    audioMuted: app.local.audioMuted,
    videoEnabled: app.local.videoEnabled && Boolean(videoTrack()),
  };
}

function renderRoom() {
  const self = selfMember();
  const members = [...app.members.values()].sort((a, b) => (a.joinedAt ?? 0) - (b.joinedAt ?? 0));
  const others = members.filter((m) => m.userId !== app.selfId);
  // A connected conference system takes the stage; then no member is on it,
  // and every other member is a tile and oneself the small picture.
  const mcuStream = mcuStageStream();
  const onMcu = Boolean(mcuStream);
  app.mcu.onStage = onMcu;
  const staged = onMcu ? null : stageMember();
  const stagedIsSelf = !onMcu && (!staged || staged.userId === app.selfId);
  const shown = onMcu ? null : stagedIsSelf ? self : staged;

  // The stage.
  const stage = $('stage');
  stage.dataset.source = onMcu ? 'mcu' : 'member';
  const mainVideo = $('mainVideo');
  if (onMcu) {
    clearMemberFlags(stage);
    attach(mainVideo, mcuStream);
    mainVideo.hidden = false;
    mainVideo.classList.remove('mirror');
    $('stagePlaceholder').hidden = true;
    $('stageLabel').replaceChildren(
      h('span', { class: 'ind mcu', html: ICONS.mcu }),
      h('span', { class: 'name' }, t('mcuLabel')),
    );
    stage.classList.remove('speaking');
  } else {
    memberFlags(stage, shown);
    const stageStream = stagedIsSelf ? (self.videoEnabled ? app.local.stream : null) : remoteVideoStream(staged);
    attach(mainVideo, stageStream);
    mainVideo.hidden = !stageStream;
    mainVideo.classList.toggle('mirror', stagedIsSelf);
    $('stagePlaceholder').hidden = Boolean(stageStream);
    if (!stageStream) {
      const avatar = $('stageAvatar');
      const src = avatarUrl(shown.userId);
      if (avatar.getAttribute('src') !== src) avatar.src = src;
      $('stageHint').textContent = stagedIsSelf && others.length === 0 ? t('alone') : '';
    }
    $('stageLabel').replaceChildren(...indicators(shown, { self: stagedIsSelf }));
    stage.classList.toggle('speaking', Boolean(shown.speaking && !shown.audioMuted));
  }
  renderMcuStatus();

  // Oneself, small, when not on the stage.
  const pip = $('selfView');
  pip.hidden = stagedIsSelf;
  if (!stagedIsSelf) {
    memberFlags(pip, self);
    const stream = self.videoEnabled ? app.local.stream : null;
    attach($('selfVideo'), stream);
    $('selfVideo').hidden = !stream;
    const avatar = $('selfAvatar');
    avatar.hidden = Boolean(stream);
    const src = avatarUrl(self.userId);
    if (avatar.getAttribute('src') !== src) avatar.src = src;
    $('selfLabel').replaceChildren(...indicators(self, { self: true }));
  }

  // The other members' tiles (the one on the stage is not repeated).
  const grid = $('grid');
  const inGrid = shown ? others.filter((m) => m.userId !== shown.userId) : others;
  const wanted = new Set(inGrid.map((m) => m.userId));
  for (const [userId, tile] of tiles) {
    if (!wanted.has(userId)) {
      tile.video.srcObject = null;
      tile.el.remove();
      tiles.delete(userId);
    }
  }
  for (const m of inGrid) {
    let tile = tiles.get(m.userId);
    if (!tile) {
      const video = h('video', { autoplay: true, playsinline: true, muted: true });
      video.muted = true;
      const avatar = h('img', { class: 'avatar', alt: '', src: avatarUrl(m.userId) });
      const status = h('div', { class: 'tile-status' });
      const label = h('div', { class: 'tile-label' });
      const el = h('div', { class: 'tile' }, video, avatar, status, label);
      tile = { el, video, avatar, status, label };
      tiles.set(m.userId, tile);
    }
    memberFlags(tile.el, m);
    const stream = remoteVideoStream(m);
    attach(tile.video, stream);
    tile.video.hidden = !stream;
    tile.avatar.hidden = Boolean(stream);
    tile.status.textContent = m.connected === false ? t('reconnecting') : '';
    tile.status.hidden = m.connected !== false;
    tile.label.replaceChildren(...indicators(m));
    tile.el.classList.toggle('speaking', Boolean(m.speaking && !m.audioMuted));
    placeAt(grid, tile.el, inGrid.indexOf(m));
  }
  grid.hidden = inGrid.length === 0;
  $('room').classList.toggle('no-grid', inGrid.length === 0);

  // The member list: everyone, oneself first.
  $('peopleTitle').textContent = t('participantsCount', { n: members.length || 1 });
  const list = $('memberList');
  const listed = [self, ...others];
  const listedIds = new Set(listed.map((m) => m.userId));
  for (const [userId, li] of listItems) {
    if (!listedIds.has(userId)) {
      li.remove();
      listItems.delete(userId);
    }
  }
  for (const m of listed) {
    let li = listItems.get(m.userId);
    if (!li) {
      li = h('li', { class: 'member' }, h('img', { class: 'avatar', alt: '', src: avatarUrl(m.userId) }), h('div', { class: 'member-line' }));
      listItems.set(m.userId, li);
    }
    memberFlags(li, m);
    const line = indicators(m, { self: m.userId === app.selfId });
    if (self.role === 'chair') {
      const pinned = app.mainVideo === m.userId && app.mainVideoCause === 'pinned';
      line.push(h('button', {
        class: `pin${pinned ? ' on' : ''}`, type: 'button', 'data-pin': m.userId,
        title: t(pinned ? 'unpin' : 'pin'), 'aria-pressed': String(pinned),
      }, t(pinned ? 'unpin' : 'pin')));
    }
    li.lastElementChild.replaceChildren(...line);
    placeAt(list, li, listed.indexOf(m));
  }
  $('people').classList.toggle('open', app.ui.people);
  $('peopleButton').setAttribute('aria-expanded', String(app.ui.people));

  // Remote audio: one element per member with an audio track.
  for (const [userId, el] of audioSinks) {
    if (!app.remote.has(userId)) {
      el.srcObject = null;
      el.remove();
      audioSinks.delete(userId);
    }
  }
  for (const [userId, stream] of app.remote) {
    if (audioSinks.has(userId) || stream.getAudioTracks().length === 0) continue;
    const el = h('audio', { autoplay: true });
    el.srcObject = stream;
    $('audioSinks').append(el);
    el.play().catch(() => {});
    audioSinks.set(userId, el);
  }
  renderMcuAudio();

  // Controls.
  const audio = audioTrack();
  const video = videoTrack();
  setIconButton($('micButton'), app.local.audioMuted ? 'micOff' : 'mic', t(app.local.audioMuted ? 'unmute' : 'mute'), {
    pressed: app.local.audioMuted, disabled: !audio,
  });
  $('micButton').classList.toggle('off', app.local.audioMuted);
  setIconButton($('camButton'), self.videoEnabled ? 'camera' : 'cameraOff', t(self.videoEnabled ? 'cameraOff' : 'cameraOn'), {
    pressed: !self.videoEnabled, disabled: !video,
  });
  $('camButton').classList.toggle('off', !self.videoEnabled);
  setIconButton($('devicesButton'), 'settings', t('devices'), { disabled: !navigator.mediaDevices });
  $('devicesButton').setAttribute('aria-expanded', String(app.ui.deviceMenu));
  $('deviceMenu').hidden = !app.ui.deviceMenu;
  setIconButton($('peopleButton'), 'people', t('participantsCount', { n: members.length || 1 }));
  setIconButton($('leaveButton'), 'leave', t('leave'), { disabled: app.leaving });
}

// The conference system's mixed audio: one more element, apart from the
// members', while its stream has a live audio track (whatever the call state:
// the server takes the tracks away when the call ends).
let mcuSink = null;

function renderMcuAudio() {
  const stream = app.mcu.stream;
  const audible = Boolean(stream?.getAudioTracks().some((track) => track.readyState === 'live'));
  if (!audible) {
    if (mcuSink) {
      mcuSink.srcObject = null;
      mcuSink.remove();
      mcuSink = null;
    }
    return;
  }
  if (!mcuSink || !mcuSink.isConnected) {
    mcuSink = h('audio', { autoplay: true, 'data-source': 'mcu' });
    $('audioSinks').append(mcuSink);
  }
  if (mcuSink.srcObject !== stream) {
    mcuSink.srcObject = stream;
    mcuSink.play().catch(() => {});
  }
}

// The MCU call's state over the stage; hidden while the conference is not
// bound (no `mcu.state` came). The server's reason is English text, shown as
// it is after the state.
const MCU_STATE_KEYS = { calling: 'mcuCalling', connected: 'mcuConnected', failed: 'mcuFailed', ended: 'mcuEnded' };

function renderMcuStatus() {
  const el = $('mcuStatus');
  const status = app.mcu.status;
  const key = status && MCU_STATE_KEYS[status.state];
  el.hidden = !key;
  if (!key) return;
  el.dataset.state = status.state;
  let detail = '';
  if (status.state === 'failed' || status.state === 'ended') {
    detail = status.reason ?? '';
  } else if (status.state === 'connected' && (status.audio == null) !== (status.video == null)) {
    detail = t(status.video == null ? 'mcuAudioOnly' : 'mcuVideoOnly');
  }
  el.querySelector('.mcu-text').textContent = t(key);
  const detailEl = el.querySelector('.mcu-detail');
  detailEl.textContent = detail;
  detailEl.hidden = !detail;
  el.title = detail ? `${t(key)} · ${detail}` : t(key);
}

function renderQuality(view) {
  const el = $('quality');
  const q = app.quality;
  el.hidden = view !== 'room' || !q;
  if (el.hidden) return;
  el.dataset.level = String(q.level);
  el.dataset.key = q.key;
  const detail = q.rttMs != null ? t('qualityDetail', { rtt: q.rttMs, loss: q.lossPercent.toFixed(1) }) : '';
  el.innerHTML = `${signalBars(q.level)}<span class="quality-text"></span>`;
  el.querySelector('.quality-text').textContent = t(q.key);
  el.title = detail ? `${t(q.key)} · ${detail}` : t(q.key);
}

function renderFarewell() {
  const { key, vars } = app.farewell;
  $('farewellTitle').textContent = t(key, vars);
  $('farewellTitle').dataset.key = key;
  $('farewellText').textContent = key === 'farewellLeft' || key === 'farewellEnded' ? t('farewellHint') : '';
  $('rejoinButton').hidden = key === 'farewellEnded' || key === 'farewellRemoved';
}
