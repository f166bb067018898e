// Mafalda demo room: joins ?room=NAME as ?name=DISPLAY, publishes camera + microphone with
// mediasoup-client and shows every other participant's video. Speaks docs/api.md over
// ws(s)://<host>/v1/ws. window.mafalda exposes receive counters for the browser test.
import { Device } from 'mediasoup-client';

const params = new URLSearchParams(location.search);
const roomId = params.get('room') || 'demo';
const displayName = params.get('name') || `guest-${Math.floor(Math.random() * 1000)}`;
const token = params.get('token');
// ?simulcast=1: 720p camera sent as three VP8 simulcast layers (320x180, 640x360, 1280x720).
const simulcast = params.get('simulcast') === '1';
// ?svc=1: 720p camera sent as VP9 SVC, three spatial and three temporal layers (L3T3_KEY).
const svc = params.get('svc') === '1';
// Test knobs: ?video=0 publishes the microphone only; ?relay=PORT makes the receive
// transport reach the node through 127.0.0.1:PORT (a test relay that limits bandwidth).
const sendVideo = params.get('video') !== '0';
const relayPort = Number(params.get('relay') || 0);
const SIMULCAST_ENCODINGS = [
  { scaleResolutionDownBy: 4, maxBitrate: 150000 },
  { scaleResolutionDownBy: 2, maxBitrate: 500000 },
  { scaleResolutionDownBy: 1, maxBitrate: 1500000 },
];

const statusEl = document.getElementById('status');
const gridEl = document.getElementById('grid');
const localVideo = document.getElementById('local');
document.getElementById('room').textContent = roomId;
document.getElementById('me').textContent = displayName;

function setStatus(text) {
  statusEl.textContent = text;
  console.log(`[mafalda] ${text}`);
}

// ------------------------------------------------------------------ the JSON protocol
class Api {
  constructor(url) {
    this.ws = new WebSocket(url); // no subprotocol: nng answers one it does not know with 400
    this.nextId = 1;
    this.pending = new Map();
    this.handlers = new Map();
    this.opened = new Promise((resolve, reject) => {
      this.ws.onopen = resolve;
      this.ws.onerror = () => reject(new Error('WebSocket error'));
    });
    this.ws.onmessage = (ev) => this.onMessage(ev.data);
    this.ws.onclose = (ev) => {
      for (const { reject } of this.pending.values()) reject(new Error('connection closed'));
      this.pending.clear();
      setStatus(`disconnected (code ${ev.code})`);
    };
  }
  onMessage(text) {
    let msg;
    try { msg = JSON.parse(text); } catch (e) { console.warn('bad message', text); return; }
    if (msg.event) {
      const h = this.handlers.get(msg.event);
      if (h) h(msg.target, msg.data || {});
      return;
    }
    if (msg.id === null || msg.id === undefined) {
      console.warn('server error', msg.error);
      if (msg.error) setStatus(`server: ${msg.error.code}: ${msg.error.message}`);
      return;
    }
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    if (msg.ok) p.resolve(msg.data || {});
    else p.reject(new Error(`${p.method}: ${msg.error.code}: ${msg.error.message}`));
  }
  request(method, data = {}) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, method });
      this.ws.send(JSON.stringify({ id, method, data }));
    });
  }
  on(event, handler) { this.handlers.set(event, handler); }
}

// ------------------------------------------------------------------ state
const device = new Device();
const consumers = new Map();   // consumerId -> { consumer, producerId, tile, kind, audioEl }
const seenProducers = new Set();
const ownProducers = new Set();
let recvTransport;
let sendTransport;
let api;

function makeTile(consumer, label) {
  const tile = document.createElement('div');
  tile.className = 'tile remote';
  tile.dataset.producerId = consumer.producerId;
  const video = document.createElement('video');
  video.autoplay = true;
  video.playsInline = true;
  video.muted = true;
  video.srcObject = new MediaStream([consumer.track]);
  const name = document.createElement('div');
  name.className = 'name';
  name.textContent = label;
  const rate = document.createElement('div');
  rate.className = 'rate';
  rate.textContent = '…';
  tile.append(video, name, rate);
  gridEl.append(tile);
  video.play().catch(() => {});
  return tile;
}

async function consume(producerId, kind, appData) {
  // Announcements before the recv transport exists are covered by router.listProducers.
  if (!recvTransport) return;
  if (seenProducers.has(producerId) || ownProducers.has(producerId)) return;
  seenProducers.add(producerId);
  try {
    const data = await api.request('transport.consume', {
      transportId: recvTransport.id,
      producerId,
      rtpCapabilities: device.rtpCapabilities,
      paused: true,
    });
    const consumer = await recvTransport.consume({
      id: data.id,
      producerId: data.producerId,
      kind: data.kind,
      rtpParameters: data.rtpParameters,
    });
    const entry = { consumer, producerId, kind: consumer.kind, tile: null, audioEl: null,
                    lastBytes: 0, lastTs: 0 };
    if (consumer.kind === 'video') {
      const label = (appData && appData.name) || `peer ${producerId.slice(0, 8)}`;
      entry.tile = makeTile(consumer, label);
    } else {
      const audio = document.createElement('audio');
      audio.autoplay = true;
      audio.srcObject = new MediaStream([consumer.track]);
      audio.play().catch(() => {});
      entry.audioEl = audio;
    }
    consumers.set(consumer.id, entry);
    await api.request('consumer.resume', { consumerId: consumer.id });
    setStatus(`receiving ${consumers.size} stream(s)`);
  } catch (e) {
    seenProducers.delete(producerId);
    console.error('consume failed', e);
    setStatus(`consume failed: ${e.message}`);
  }
}

function removeConsumer(consumerId) {
  const entry = consumers.get(consumerId);
  if (!entry) return;
  consumers.delete(consumerId);
  seenProducers.delete(entry.producerId);
  entry.consumer.close();
  if (entry.tile) entry.tile.remove();
  if (entry.audioEl) entry.audioEl.srcObject = null;
}

// ------------------------------------------------------------------ stats
async function sumInbound(kind, field) {
  let total = 0;
  for (const entry of consumers.values()) {
    if (entry.kind !== kind || entry.consumer.closed) continue;
    try {
      const report = await entry.consumer.getStats();
      report.forEach((s) => { if (s.type === 'inbound-rtp' && s[field]) total += s[field]; });
    } catch (e) { /* consumer closed meanwhile */ }
  }
  return total;
}

async function perConsumer() {
  const out = [];
  for (const [id, entry] of consumers) {
    const row = { consumerId: id, producerId: entry.producerId, kind: entry.kind,
                  framesDecoded: 0, packetsReceived: 0, bytesReceived: 0,
                  frameWidth: 0, frameHeight: 0, layers: entry.layers || null };
    try {
      const report = await entry.consumer.getStats();
      report.forEach((s) => {
        if (s.type !== 'inbound-rtp') return;
        row.framesDecoded += s.framesDecoded || 0;
        row.packetsReceived += s.packetsReceived || 0;
        row.bytesReceived += s.bytesReceived || 0;
        if (s.frameWidth) { row.frameWidth = s.frameWidth; row.frameHeight = s.frameHeight; }
      });
    } catch (e) { /* closed */ }
    out.push(row);
  }
  return out;
}

async function updateBitrates() {
  const now = performance.now();
  for (const row of await perConsumer()) {
    const entry = consumers.get(row.consumerId);
    if (!entry) continue;
    if (entry.lastTs) {
      const kbps = ((row.bytesReceived - entry.lastBytes) * 8) / (now - entry.lastTs);
      entry.kbps = Math.max(0, kbps);
      if (entry.tile) entry.tile.querySelector('.rate').textContent =
        `${entry.kbps.toFixed(0)} kbit/s · ${row.framesDecoded} frames`;
    }
    entry.lastBytes = row.bytesReceived;
    entry.lastTs = now;
  }
}
setInterval(() => { updateBitrates().catch(() => {}); }, 1000);

// Counters for tests (tests/browser): computed from the consumers' RTCRtpReceiver stats.
window.mafalda = {
  ready: false,
  error: null,
  framesDecoded: () => sumInbound('video', 'framesDecoded'),
  audioPacketsReceived: () => sumInbound('audio', 'packetsReceived'),
  perConsumer,
  tiles: () => gridEl.querySelectorAll('.tile.remote').length,
  producers: () => [...ownProducers],
  // consumer.setPreferredLayers for one of this page's consumers (simulcast test).
  setPreferredLayers: (consumerId, spatialLayer, temporalLayer) =>
    api.request('consumer.setPreferredLayers', { consumerId, spatialLayer, temporalLayer }),
  // What this page sends (diagnostics: resolution, frame rate, why the encoder limits).
  outbound: async () => {
    const rows = [];
    if (!sendTransport) return rows;
    (await sendTransport.getStats()).forEach((s) => {
      if (s.type !== 'outbound-rtp') return;
      rows.push({ kind: s.kind, packetsSent: s.packetsSent, bytesSent: s.bytesSent,
                  framesEncoded: s.framesEncoded, framesPerSecond: s.framesPerSecond,
                  frameWidth: s.frameWidth, frameHeight: s.frameHeight,
                  targetBitrate: s.targetBitrate, pliCount: s.pliCount, nackCount: s.nackCount,
                  qualityLimitationReason: s.qualityLimitationReason });
    });
    return rows;
  },
};

// ------------------------------------------------------------------ join
async function main() {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const url = `${scheme}://${location.host}/v1/ws${token ? `?token=${encodeURIComponent(token)}` : ''}`;
  setStatus(`connecting to ${url}`);
  api = new Api(url);
  api.on('router.newproducer', (target, data) => {
    consume(data.id || target, data.kind, data.appData);
  });
  api.on('consumer.producerclose', (target) => removeConsumer(target));
  api.on('consumer.producerpause', (target) => {
    const e = consumers.get(target);
    if (e && e.tile) e.tile.classList.add('paused');
  });
  api.on('consumer.producerresume', (target) => {
    const e = consumers.get(target);
    if (e && e.tile) e.tile.classList.remove('paused');
  });
  api.on('consumer.layerschange', (target, data) => {
    const e = consumers.get(target);
    if (e) e.layers = data && data.spatialLayer !== undefined ? data : null;
  });
  api.on('transport.dtlsstatechange', (target, data) => console.log('dtls', target, data));
  await api.opened;

  const joined = await api.request('router.join', { roomId });
  await device.load({ routerRtpCapabilities: joined.rtpCapabilities });
  setStatus(`joined room ${roomId}`);

  const sendInfo = await api.request('router.createWebRtcTransport', {});
  sendTransport = device.createSendTransport(sendInfo);
  sendTransport.on('connect', ({ dtlsParameters }, callback, errback) => {
    api.request('transport.connect', { transportId: sendTransport.id, dtlsParameters })
      .then(() => callback(), errback);
  });
  sendTransport.on('produce', ({ kind, rtpParameters, appData }, callback, errback) => {
    api.request('transport.produce', { transportId: sendTransport.id, kind, rtpParameters, appData })
      .then(({ id }) => { ownProducers.add(id); callback({ id }); }, errback);
  });
  sendTransport.on('connectionstatechange', (s) => console.log('send transport', s));

  const recvInfo = await api.request('router.createWebRtcTransport', {});
  if (relayPort) {
    recvInfo.iceCandidates = recvInfo.iceCandidates.map((c) => ({ ...c, ip: '127.0.0.1',
                                                                   address: '127.0.0.1', port: relayPort }));
  }
  recvTransport = device.createRecvTransport(recvInfo);
  recvTransport.on('connect', ({ dtlsParameters }, callback, errback) => {
    api.request('transport.connect', { transportId: recvTransport.id, dtlsParameters })
      .then(() => callback(), errback);
  });
  recvTransport.on('connectionstatechange', (s) => console.log('recv transport', s));

  const stream = await navigator.mediaDevices.getUserMedia({
    audio: true,
    video: simulcast || svc ? { width: 1280, height: 720 } : { width: 640, height: 360 },
  });
  localVideo.srcObject = stream;
  localVideo.play().catch(() => {});
  const video = sendVideo ? stream.getVideoTracks()[0] : null;
  const audio = stream.getAudioTracks()[0];
  if (video) {
    await sendTransport.produce({ track: video, appData: { name: displayName },
                                  ...(simulcast ? { encodings: SIMULCAST_ENCODINGS } : {}),
                                  ...(svc ? {
                                    codec: device.rtpCapabilities.codecs.find(
                                      (c) => c.mimeType.toLowerCase() === 'video/vp9'),
                                    encodings: [{ scalabilityMode: 'L3T3_KEY' }],
                                  } : {}) });
  }
  if (audio) await sendTransport.produce({ track: audio, appData: { name: displayName } });
  setStatus(`publishing in ${roomId}`);

  const { producers } = await api.request('router.listProducers', {});
  await Promise.all(producers.map((p) => consume(p.id, p.kind, p.appData)));
  window.mafalda.ready = true;
}

main().catch((e) => {
  console.error(e);
  window.mafalda.error = String(e && e.message ? e.message : e);
  setStatus(`error: ${window.mafalda.error}`);
});
