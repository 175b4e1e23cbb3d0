// The page's two WebRTC connections to the server (docs/api.md, "Media"):
//
//   publish    page offers its camera and microphone (sendonly), server answers
//   subscribe  server offers the other members' tracks, page answers
//
// Each leg has a single offerer, so renegotiation never collides. Both legs
// trickle their candidates with `media.candidate {leg, candidate}`. A leg whose
// ICE state goes `failed`, or stays `disconnected`, restarts ICE: the publish
// leg with a new offer made with `iceRestart`, the subscribe leg by asking the
// server for a new offer (`media.restartIce`).
//
// These classes never touch the DOM; the page hands them a `request(method,
// params)` function that goes through whichever WebSocket is current.

// No STUN or TURN: the server has a public address and learns the browser's
// from its connectivity checks (peer-reflexive candidates).
const RTC_CONFIG = { iceServers: [], bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' };
// `disconnected` often heals by itself within a second or two (a Wi-Fi
// hiccup); restart only if it has not after this long.
const DISCONNECTED_GRACE_MS = 2500;
// At most one ICE restart per leg this often, so a flapping network does not
// become a storm of offers.
const RESTART_INTERVAL_MS = 5000;

class Leg {
  constructor(name, { request, onIceState }) {
    this.name = name;
    this.request = request;
    this.onIceState = onIceState;
    this.pc = null;
    // Our candidates wait until the server has our description's counterpart;
    // dropped when the negotiation failed.
    this.outgoing = [];
    this.negotiated = false;
    // Server candidates that arrive before its description.
    this.incoming = [];
    // Every candidate this leg gathered (the tests look for mDNS names here).
    this.gathered = [];
    this.disconnectedTimer = null;
    this.lastRestart = 0;
    this.closed = false;
  }

  get iceState() {
    return this.pc ? this.pc.iceConnectionState : 'new';
  }

  makeConnection() {
    const pc = new RTCPeerConnection(RTC_CONFIG);
    pc.addEventListener('icecandidate', (event) => {
      if (pc !== this.pc) return;
      const candidate = event.candidate ? event.candidate.toJSON() : null;
      if (candidate) this.gathered.push(candidate.candidate);
      if (this.negotiated) this.sendCandidate(candidate);
      else this.outgoing.push(candidate);
    });
    pc.addEventListener('iceconnectionstatechange', () => {
      if (pc !== this.pc) return;
      console.info(`confgate: ${this.name} ICE ${pc.iceConnectionState}`);
      this.watchIce(pc.iceConnectionState);
      this.onIceState?.(this.name, pc.iceConnectionState);
    });
    this.pc = pc;
    this.negotiated = false;
    this.outgoing = [];
    this.incoming = [];
    return pc;
  }

  sendCandidate(candidate) {
    this.request('media.candidate', { leg: this.name, candidate }).catch((e) => {
      console.debug(`confgate: ${this.name} candidate not taken`, e.message);
    });
  }

  // After the exchange of descriptions: what waited may go now.
  negotiationDone() {
    this.negotiated = true;
    const waiting = this.outgoing;
    this.outgoing = [];
    for (const candidate of waiting) this.sendCandidate(candidate);
    const early = this.incoming;
    this.incoming = [];
    for (const candidate of early) this.addRemoteCandidate(candidate);
  }

  addRemoteCandidate(candidate) {
    if (!this.pc || !this.pc.remoteDescription) {
      this.incoming.push(candidate);
      return;
    }
    this.pc.addIceCandidate(candidate ?? null).catch((e) => {
      console.debug(`confgate: ${this.name} server candidate refused`, e.message);
    });
  }

  watchIce(state) {
    clearTimeout(this.disconnectedTimer);
    if (state === 'failed') {
      this.restartSoon(0);
    } else if (state === 'disconnected') {
      this.disconnectedTimer = setTimeout(() => {
        if (this.iceState === 'disconnected') this.restartSoon(0);
      }, DISCONNECTED_GRACE_MS);
    }
  }

  restartSoon(delay) {
    if (this.closed) return;
    const wait = Math.max(delay, this.lastRestart + RESTART_INTERVAL_MS - Date.now());
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      this.lastRestart = Date.now();
      console.info(`confgate: ${this.name} ICE restart`);
      this.restartIce().catch((e) => console.warn(`confgate: ${this.name} ICE restart failed`, e.message));
    }, wait);
  }

  // Whether this leg needs an ICE restart after the signalling came back.
  get unhealthy() {
    return this.pc !== null && ['disconnected', 'failed'].includes(this.iceState);
  }

  close() {
    this.closed = true;
    clearTimeout(this.disconnectedTimer);
    clearTimeout(this.restartTimer);
    this.pc?.close();
  }
}

// Puts the codecs `names` (lower case: 'pcmu', 'h264', …) first among those the browser
// offers for `kind`, in that order; the others keep theirs. A conference bound to an MCU
// prefers the MCU's codecs, which the server then forwards without transcoding.
export function preferCodecs(transceiver, kind, names) {
  if (!names?.length || typeof transceiver.setCodecPreferences !== 'function') return;
  const codecs = globalThis.RTCRtpReceiver?.getCapabilities?.(kind)?.codecs;
  if (!codecs?.length) return;
  const rank = (c) => {
    const i = names.indexOf(c.mimeType.split('/')[1]?.toLowerCase());
    return i < 0 ? names.length : i;
  };
  const ordered = codecs.map((c, i) => [rank(c), i, c]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  try {
    transceiver.setCodecPreferences(ordered.map(([, , c]) => c));
  } catch (e) {
    console.warn('confgate: codec preferences refused', e.message);
  }
}

export class PublishLeg extends Leg {
  // `options.codecs()`: the codecs to prefer, or null.
  constructor(options) {
    super('publish', options);
    this.stream = null;
    this.codecs = options.codecs;
  }

  // A new connection sending every track of `stream`, and its first offer.
  async start(stream) {
    this.stream = stream;
    this.pc?.close();
    const pc = this.makeConnection();
    for (const track of stream.getTracks()) {
      const transceiver = pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
      preferCodecs(transceiver, track.kind, this.codecs?.());
    }
    await this.negotiate(false);
  }

  async negotiate(iceRestart) {
    const pc = this.pc;
    this.negotiated = false;
    const offer = await pc.createOffer({ iceRestart });
    await pc.setLocalDescription(offer);
    const { sdp } = await this.request('media.offer', { sdp: pc.localDescription.sdp });
    if (pc !== this.pc) return;
    await pc.setRemoteDescription({ type: 'answer', sdp });
    this.negotiationDone();
  }

  async restartIce() {
    if (!this.pc || this.closed) return;
    try {
      await this.negotiate(true);
    } catch (e) {
      // The server may have forgotten this connection: start a fresh one.
      console.info('confgate: publish ICE restart refused, starting over', e.message);
      await this.start(this.stream);
    }
  }

  // Sends `track` instead of the current track of its kind (device change).
  async replaceTrack(track) {
    const sender = this.pc?.getSenders().find((s) => s.track?.kind === track.kind);
    if (sender) await sender.replaceTrack(track);
  }
}

// The stream id of the conference system's tracks on the subscribe leg: when
// a conference is bound to a SIP/MCU conference system, the server adds its
// composed picture and mixed audio as one stream with this id. No member has
// this userId; it is never a member's stream.
export const MCU_STREAM_ID = 'mcu';

export class SubscribeLeg extends Leg {
  // `onTrack(ownerId, track, stream)`: a remote track arrived. The owner is
  // the stream id: a member's userId, or MCU_STREAM_ID for the conference
  // system's stream.
  constructor({ onTrack, ...options }) {
    super('subscribe', options);
    this.onTrack = onTrack;
    this.trackOwner = new Map();
    this.midOwner = new Map();
    this.queue = Promise.resolve();
  }

  makeConnection() {
    const pc = super.makeConnection();
    pc.addEventListener('track', (event) => {
      const stream = event.streams[0];
      if (!stream) {
        console.warn('confgate: a track without a stream id; the server should set msid');
        return;
      }
      const ownerId = stream.id;
      this.trackOwner.set(event.track.id, ownerId);
      if (event.transceiver?.mid != null) this.midOwner.set(event.transceiver.mid, ownerId);
      this.onTrack(ownerId, event.track, stream);
    });
    return pc;
  }

  // The server's offer (at join, and whenever members' tracks come or go).
  // Offers are applied one at a time, in order.
  handleOffer(sdp) {
    const work = this.queue.then(() => this.answer(sdp));
    this.queue = work.catch(() => {});
    return work;
  }

  async answer(sdp) {
    if (this.closed) return;
    if (!this.pc) this.makeConnection();
    try {
      await this.pc.setRemoteDescription({ type: 'offer', sdp });
    } catch (e) {
      // An offer that this connection cannot take (such as a new DTLS
      // identity after the server restarted its side): a fresh connection.
      console.info('confgate: subscriber offer refused, new connection', e.message);
      this.pc.close();
      this.makeConnection();
      await this.pc.setRemoteDescription({ type: 'offer', sdp });
    }
    const pc = this.pc;
    this.negotiated = false;
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    await this.request('media.answer', { sdp: pc.localDescription.sdp });
    if (pc === this.pc) this.negotiationDone();
  }

  async restartIce() {
    if (this.closed) return;
    await this.request('media.restartIce', { leg: 'subscribe' });
  }

  // What arrived on this connection, from its inbound-rtp stats:
  //   {members: {<userId>: COUNTERS}, mcu: COUNTERS | null}
  // with COUNTERS = {audio: {packetsReceived}, video: {framesDecoded,
  // packetsReceived}}. `mcu` is the conference system's stream (stream id
  // MCU_STREAM_ID), null while none of it has arrived on this connection.
  async receiveStats() {
    const members = {};
    let mcu = null;
    if (!this.pc) return { members, mcu };
    const report = await this.pc.getStats();
    const empty = () => ({
      audio: { packetsReceived: 0 },
      video: { framesDecoded: 0, packetsReceived: 0 },
    });
    report.forEach((s) => {
      if (s.type !== 'inbound-rtp') return;
      const owner = this.trackOwner.get(s.trackIdentifier) ?? this.midOwner.get(s.mid);
      if (!owner) return;
      const counters = owner === MCU_STREAM_ID ? (mcu ??= empty()) : (members[owner] ??= empty());
      if (s.kind === 'audio') {
        counters.audio.packetsReceived += s.packetsReceived ?? 0;
      } else if (s.kind === 'video') {
        counters.video.packetsReceived += s.packetsReceived ?? 0;
        counters.video.framesDecoded += s.framesDecoded ?? 0;
      }
    });
    return { members, mcu };
  }

  // Per member: {audio: {packetsReceived}, video: {framesDecoded, packetsReceived}}.
  async memberStats() {
    return (await this.receiveStats()).members;
  }
}

// Round-trip time and loss of one connection, for the quality hint. Keeps the
// previous sample so loss is over the last interval, not since the start.
export class QualityProbe {
  constructor() {
    this.previous = new Map();
  }

  // {rttMs, lossPercent} or null when nothing flows yet.
  async sample(pc) {
    if (!pc || !['connected', 'completed'].includes(pc.iceConnectionState)) return null;
    const report = await pc.getStats();
    let rtt = null;
    let received = 0;
    let lost = 0;
    let remoteLoss = null;
    report.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) {
        const pair = report.get(s.selectedCandidatePairId);
        if (pair?.currentRoundTripTime != null) rtt = pair.currentRoundTripTime;
      } else if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded' && rtt == null) {
        rtt = s.currentRoundTripTime ?? null;
      } else if (s.type === 'inbound-rtp') {
        received += s.packetsReceived ?? 0;
        lost += Math.max(0, s.packetsLost ?? 0);
      } else if (s.type === 'remote-inbound-rtp' && s.fractionLost != null) {
        // What the server reports about what we send (publish leg).
        remoteLoss = Math.max(remoteLoss ?? 0, s.fractionLost);
        if (rtt == null && s.roundTripTime != null) rtt = s.roundTripTime;
      }
    });
    const before = this.previous.get(pc) ?? { received: 0, lost: 0 };
    this.previous.set(pc, { received, lost });
    const dReceived = received - before.received;
    const dLost = lost - before.lost;
    let lossPercent = 0;
    if (dReceived + dLost > 0) lossPercent = (100 * dLost) / (dReceived + dLost);
    else if (remoteLoss != null) lossPercent = 100 * remoteLoss;
    return { rttMs: rtt == null ? null : Math.round(rtt * 1000), lossPercent };
  }
}
