// DataChannel test page (bundled by datachannel.test.mjs with esbuild and node/web's
// mediasoup-client): window.dc drives one peer. join() creates a send and a recv
// transport with enableSctp; produce() opens a negotiated DataChannel (produceData);
// consume() receives another peer's data producer (consumeData); messages are recorded
// per label in arrival order.
import { Device } from 'mediasoup-client';

class Api {
  constructor(url) {
    this.ws = new WebSocket(url);
    this.nextId = 1;
    this.pending = new Map();
    this.handlers = new Map();
    this.opened = new Promise((resolve, reject) => {
      this.ws.onopen = () => resolve();
      this.ws.onerror = () => reject(new Error('websocket error'));
    });
    this.ws.onmessage = (ev) => {
      const msg = JSON.parse(ev.data);
      if (msg.event) {
        const h = this.handlers.get(msg.event);
        if (h) h(msg.target, msg.data || {});
        return;
      }
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.ok) p.resolve(msg.data || {});
      else p.reject(new Error(`${p.method}: ${msg.error.code}: ${msg.error.message}`));
    };
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

const device = new Device();
let api;
let sendTransport;
let recvTransport;
const producers = new Map(); // label -> DataProducer
const received = new Map();  // label -> [string]
const events = [];

function connectHandler(transport) {
  transport.on('connect', ({ dtlsParameters }, callback, errback) => {
    api.request('transport.connect', { transportId: transport.id, dtlsParameters })
      .then(() => callback(), errback);
  });
}

window.dc = {
  events,
  async join(roomId) {
    api = new Api(`ws://${location.host}/v1/ws`);
    api.on('router.newdataproducer', (target, data) => events.push({ event: 'newdataproducer', target, data }));
    api.on('dataConsumer.dataproducerclose', (target) => events.push({ event: 'dataproducerclose', target }));
    api.on('transport.sctpstatechange', (target, data) => events.push({ event: 'sctpstatechange', target, data }));
    await api.opened;
    const joined = await api.request('router.join', { roomId });
    await device.load({ routerRtpCapabilities: joined.rtpCapabilities });
    const opts = { enableSctp: true, numSctpStreams: device.sctpCapabilities.numStreams };
    const sendInfo = await api.request('router.createWebRtcTransport', opts);
    if (!sendInfo.sctpParameters) throw new Error('no sctpParameters in the transport');
    sendTransport = device.createSendTransport(sendInfo);
    connectHandler(sendTransport);
    sendTransport.on('producedata', ({ sctpStreamParameters, label, protocol, appData }, callback, errback) => {
      api.request('transport.produceData', { transportId: sendTransport.id, sctpStreamParameters, label, protocol, appData })
        .then(({ id }) => callback({ id }), errback);
    });
    const recvInfo = await api.request('router.createWebRtcTransport', opts);
    recvTransport = device.createRecvTransport(recvInfo);
    connectHandler(recvTransport);
    return { sctpParameters: sendInfo.sctpParameters };
  },
  async produce(label, options) {
    const p = await sendTransport.produceData({ label, ...options });
    producers.set(label, p);
    if (p.readyState !== 'open') await new Promise((resolve) => p.on('open', resolve));
    return p.id;
  },
  async consume(dataProducerId) {
    const info = await api.request('transport.consumeData', { transportId: recvTransport.id, dataProducerId });
    const c = await recvTransport.consumeData({
      id: info.id, dataProducerId: info.dataProducerId, sctpStreamParameters: info.sctpStreamParameters,
      label: info.label, protocol: info.protocol });
    const list = [];
    received.set(info.label, list);
    c.on('message', (m) => list.push(typeof m === 'string' ? m : `binary:${m.byteLength}`));
    if (c.readyState !== 'open') await new Promise((resolve) => c.on('open', resolve));
    return { id: info.id, sctpStreamParameters: info.sctpStreamParameters, label: info.label };
  },
  send(label, messages) {
    const p = producers.get(label);
    for (const m of messages) p.send(m);
    return p.bufferedAmount;
  },
  // Paced: a burst of unreliable messages (maxRetransmits 0) is abandoned whole by the
  // browser's SCTP when one retransmission timer fires on a busy machine.
  async sendPaced(label, messages, batch, gapMs) {
    const p = producers.get(label);
    for (let i = 0; i < messages.length; i += batch) {
      for (const m of messages.slice(i, i + batch)) p.send(m);
      await new Promise((resolve) => setTimeout(resolve, gapMs));
    }
  },
  request(method, data) { return api.request(method, data); },
  sendBinary(label, size) {
    producers.get(label).send(new Uint8Array(size).fill(7).buffer);
  },
  received(label) { return received.get(label) || []; },
  async closeProducer(label) {
    const p = producers.get(label);
    p.close();
    await api.request('dataProducer.close', { dataProducerId: p.id });
  },
};
document.getElementById('status').textContent = 'ready';
window.dc.loaded = true;
