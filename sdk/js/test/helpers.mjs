// Shared by the SDK's node:test suites: a real mafalda-node per suite (port 0, parsed from
// its log), tokens minted by the node binary, a TCP proxy that can drop or black-hole
// connections (to cut the SDK's WebSocket without touching the node), small waits.
import { spawn, execFileSync } from 'node:child_process';
import { createServer, connect as tcpConnect } from 'node:net';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(here, '../../..');

export function nodeBinary() {
  const bin = process.env.MAFALDA_NODE_BIN;
  if (bin && existsSync(bin)) return bin;
  for (const dir of ['build/h_sdk', 'build/debug', 'build/release', 'build/asan']) {
    const p = path.join(REPO, dir, 'node/mafalda-node');
    if (existsSync(p)) return p;
  }
  throw new Error('mafalda-node not found: set MAFALDA_NODE_BIN');
}

export const SECRET = 'sdk-test-secret-0123456789abcdef';

// A token the node accepts: `mafalda-node token`.
export function mintToken({ room = 'any', identity = 'sdk-test', grant = 'admin', ttl = 3600 } = {}) {
  return execFileSync(nodeBinary(), ['token', '--api-secret', SECRET, '--room', room,
    '--identity', identity, '--grant', grant, '--ttl', String(ttl)]).toString().trim();
}

// Starts mafalda-node (1 worker, no controller, loopback). Resolves {url, httpUrl, port,
// log(), stop()} once it logged its API port.
export function startNode({ graceMs = 3000, secret = SECRET, extra = [] } = {}) {
  const args = ['--workers', '1', '--controller=false', '--rtc-listen-ip', '127.0.0.1',
    '--announced-ip', '127.0.0.1', '--rtc-port-base', '0', '--api-listen', '127.0.0.1:0',
    '--api-grace-ms', String(graceMs), '--log-level', 'info', ...extra];
  if (secret) args.push('--api-secret', secret);
  const child = spawn(nodeBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mafalda-node did not start in 20 s:\n${text}`)), 20000);
    const onData = (chunk) => {
      text += chunk.toString();
      const m = text.match(/API listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m && timer) {
        clearTimeout(timer);
        const port = Number(m[1]);
        resolve({
          port,
          url: `ws://127.0.0.1:${port}/v1/ws`,
          httpUrl: `http://127.0.0.1:${port}`,
          log: () => text,
          stop: () => stopChild(child),
        });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`mafalda-node exited early (code ${code}, signal ${sig}):\n${text}`));
    });
  });
}

// SIGTERM, then SIGKILL after 10 s; resolves to the exit status.
export async function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return `${child.exitCode ?? child.signalCode}`;
  const exited = new Promise((r) => child.once('exit', (code, sig) => r(`${code ?? sig}`)));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 10000);
  const status = await exited;
  clearTimeout(t);
  return status;
}

// A TCP proxy to `port`: drop() destroys every live connection (the SDK sees its socket
// close); hold=true black-holes both directions (a dead path without FIN); stop() also
// stops listening (the URL refuses connections); start() listens again on the same port.
export async function startProxy(port) {
  const conns = new Set();
  const proxy = {
    hold: false,
    port: 0,
    server: null,
    get url() { return `ws://127.0.0.1:${this.port}/v1/ws`; },
    drop() {
      for (const c of conns) { c.a.destroy(); c.b.destroy(); }
      conns.clear();
    },
    async stop() {
      this.drop();
      if (this.server) await new Promise((r) => this.server.close(() => r()));
      this.server = null;
    },
    async start() {
      const server = createServer((a) => {
        const b = tcpConnect(port, '127.0.0.1');
        const c = { a, b };
        conns.add(c);
        a.on('data', (d) => { if (!proxy.hold) b.write(d); });
        b.on('data', (d) => { if (!proxy.hold) a.write(d); });
        const end = () => { a.destroy(); b.destroy(); conns.delete(c); };
        a.on('close', end); b.on('close', end);
        a.on('error', end); b.on('error', end);
      });
      await new Promise((r, j) => { server.once('error', j); server.listen(this.port, '127.0.0.1', r); });
      this.port = server.address().port;
      this.server = server;
    },
  };
  await proxy.start();
  return proxy;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Resolves with the event's arguments (array), rejects after ms.
export function once(emitter, event, ms = 5000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no '${event}' within ${ms} ms`)), ms);
    emitter.once(event, (...args) => { clearTimeout(t); resolve(args); });
  });
}

export async function waitFor(what, fn, ms = 5000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await fn()) return;
    await sleep(50);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

export const MEDIA_CODECS = [
  { kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 },
  { kind: 'video', mimeType: 'video/VP8', clockRate: 90000 },
];

// rtpParameters of a send-side VP8 or Opus stream (what mediasoup-client would produce).
export function sendParams(router, kind, ssrc) {
  const mime = kind === 'video' ? 'video/VP8' : 'audio/opus';
  const cap = router.rtpCapabilities.codecs.find((c) => c.mimeType === mime);
  const codec = { mimeType: mime, payloadType: cap.preferredPayloadType, clockRate: cap.clockRate };
  if (kind === 'audio') codec.channels = 2;
  return { mid: kind === 'video' ? '0' : '1', codecs: [codec], headerExtensions: [],
    encodings: [{ ssrc }], rtcp: { cname: 'sdk-test', reducedSize: true } };
}

export const FAKE_DTLS = {
  role: 'client',
  fingerprints: [{ algorithm: 'sha-256', value:
    'AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89' }],
};
