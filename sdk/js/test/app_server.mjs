// A tiny application server written with mafalda-client, the way a mediasoup app is
// written: it owns ONE router (one SDK session) and creates transports, producers and
// consumers for its browser peers. It serves the demo page (node/web) and answers the
// page's signalling on /v1/ws, which happens to use the same message shapes as Mafalda's
// API (docs/api.md) — so the unmodified demo page runs against an app server here.
// `events` records what the SDK reported (ICE/DTLS states, scores, closes) for the test.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { WebSocketServer } from 'ws';
import mafaldaClient from '../index.js';

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.map': 'application/json' };

export async function startAppServer({ url, token, webDir, roomId }) {
  const events = [];
  const client = await mafaldaClient.connect({ url, token });
  const router = await client.joinRouter(roomId);
  const peers = new Map(); // ws -> {transports, producers, consumers}

  const http = createServer(async (req, res) => {
    const p = new URL(req.url, 'http://x').pathname;
    const rel = p === '/app/' ? 'index.html' : p.startsWith('/app/') ? p.slice(5) : null;
    if (!rel || rel.includes('..')) { res.writeHead(404).end(); return; }
    try {
      const body = await readFile(path.join(webDir, rel));
      res.writeHead(200, { 'content-type': TYPES[path.extname(rel)] || 'application/octet-stream' }).end(body);
    } catch (e) {
      res.writeHead(404).end();
    }
  });
  const wss = new WebSocketServer({ server: http, path: '/v1/ws' });

  const send = (ws, msg) => { if (ws.readyState === 1) ws.send(JSON.stringify(msg)); };
  const notify = (ws, event, target, data = {}) => send(ws, { event, target, data });

  async function handle(ws, peer, method, data) {
    switch (method) {
      case 'router.join':
        return { roomId, routerId: router.id, rtpCapabilities: router.rtpCapabilities };
      case 'router.createWebRtcTransport': {
        const t = await router.createWebRtcTransport({ appData: { peer: peer.name } });
        peer.transports.set(t.id, t);
        t.on('icestatechange', (s) => events.push(`ice ${s}`));
        t.on('dtlsstatechange', (s) => {
          events.push(`dtls ${s}`);
          notify(ws, 'transport.dtlsstatechange', t.id, { dtlsState: s });
        });
        return { id: t.id, iceParameters: t.iceParameters, iceCandidates: t.iceCandidates,
          dtlsParameters: t.dtlsParameters, iceRole: t.iceRole };
      }
      case 'transport.connect':
        await peer.transports.get(data.transportId).connect({ dtlsParameters: data.dtlsParameters });
        return {};
      case 'transport.produce': {
        const t = peer.transports.get(data.transportId);
        const p = await t.produce({ kind: data.kind, rtpParameters: data.rtpParameters, appData: data.appData || {} });
        peer.producers.set(p.id, p);
        p.on('score', () => events.push(`producer score ${p.kind}`));
        for (const [other] of peers) {
          if (other !== ws) notify(other, 'router.newproducer', p.id, { id: p.id, kind: p.kind, appData: p.appData });
        }
        return { id: p.id };
      }
      case 'transport.consume': {
        const t = peer.transports.get(data.transportId);
        if (!(await router.canConsume({ producerId: data.producerId, rtpCapabilities: data.rtpCapabilities }))) {
          throw Object.assign(new Error('cannot consume'), { code: 'invalid_state' });
        }
        const c = await t.consume({ producerId: data.producerId, rtpCapabilities: data.rtpCapabilities, paused: data.paused });
        peer.consumers.set(c.id, c);
        c.on('producerclose', () => {
          events.push('consumer producerclose');
          peer.consumers.delete(c.id);
          notify(ws, 'consumer.producerclose', c.id);
        });
        c.on('producerpause', () => notify(ws, 'consumer.producerpause', c.id));
        c.on('producerresume', () => notify(ws, 'consumer.producerresume', c.id));
        c.on('score', () => events.push(`consumer score ${c.kind}`));
        return { id: c.id, producerId: c.producerId, kind: c.kind, rtpParameters: c.rtpParameters,
          type: c.type, paused: c.paused, producerPaused: c.producerPaused };
      }
      case 'consumer.resume':
        await peer.consumers.get(data.consumerId).resume();
        return {};
      case 'router.listProducers': {
        const producers = [];
        for (const [other, op] of peers) {
          if (other === ws) continue;
          for (const p of op.producers.values()) producers.push({ id: p.id, kind: p.kind, appData: p.appData });
        }
        return { producers };
      }
      default:
        throw Object.assign(new Error(`unknown method '${method}'`), { code: 'not_found' });
    }
  }

  wss.on('connection', (ws, req) => {
    const peer = { name: new URL(req.url, 'http://x').searchParams.get('name') || 'peer',
      transports: new Map(), producers: new Map(), consumers: new Map() };
    peers.set(ws, peer);
    ws.on('message', async (raw) => {
      let msg;
      try { msg = JSON.parse(raw.toString()); } catch (e) { return; }
      try {
        const data = await handle(ws, peer, msg.method, msg.data || {});
        send(ws, { id: msg.id, ok: true, data });
      } catch (e) {
        send(ws, { id: msg.id, ok: false, error: { code: e.code || 'internal_error', message: e.message } });
      }
    });
    ws.on('close', () => {
      peers.delete(ws);
      // the page left: its transports close; the other peers' consumers of its producers
      // get 'producerclose' from the node
      for (const t of peer.transports.values()) t.close();
    });
  });

  await new Promise((r) => http.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${http.address().port}`;
  return {
    base,
    events,
    router,
    async stop() {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      await new Promise((r) => http.close(() => r()));
      await router.leave();
      client.close();
    },
  };
}
