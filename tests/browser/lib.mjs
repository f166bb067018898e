// Helpers shared by the browser tests (room.test.mjs, cluster.test.mjs): step logging with
// timings, polling, the demo page's receive counters (window.mafalda), Chromium's launch,
// /metrics gauges, free ports and stopping child processes.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.MF_CHROMIUM || '/usr/bin/chromium';
export const FRAMES_MIN = 100;
const t0 = Date.now();
export const log = (msg) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}`);

// Without --allow-loopback-in-peer-connection Chromium gathers no loopback candidates and
// can never reach a node announcing 127.0.0.x.
export function launchChromium() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run',
      '--allow-loopback-in-peer-connection', '--autoplay-policy=no-user-gesture-required',
      '--disable-dev-shm-usage'],
  });
}

// SIGTERM, then SIGKILL after 10 s; resolves to the exit status ('0' = clean shutdown).
export async function stopChild(child) {
  if (!child) return 'not started';
  if (child.exitCode !== null || child.signalCode !== null) return `${child.exitCode ?? child.signalCode}`;
  const exited = new Promise((r) => child.once('exit', (code, sig) => r(`${code ?? sig}`)));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 10000);
  const status = await exited;
  clearTimeout(t);
  return status;
}

export async function waitFor(what, fn, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await fn();
    if (last.ok) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${JSON.stringify(last)}`);
}

export async function counters(page) {
  return page.evaluate(async () => {
    const m = window.mafalda;
    if (!m) return { loaded: false };
    return { loaded: true, ready: m.ready, error: m.error, tiles: m.tiles(),
             framesDecoded: await m.framesDecoded(),
             audioPacketsReceived: await m.audioPacketsReceived(),
             perConsumer: await m.perConsumer() };
  });
}

// Every remote video consumer of the page has decoded FRAMES_MIN frames and every remote
// audio consumer received packets, from `peers` publishers (2 consumers each).
export async function waitReceiving(name, page, peers) {
  const c = await waitFor(`${name} to receive ${peers} peer(s)`, async () => {
    const s = await counters(page);
    if (s.error) throw new Error(`${name}: page error: ${s.error}`);
    const list = s.perConsumer || [];
    const video = list.filter((x) => x.kind === 'video');
    const audio = list.filter((x) => x.kind === 'audio');
    const ok = s.ready && video.length === peers && audio.length === peers &&
      video.every((x) => x.framesDecoded >= FRAMES_MIN) &&
      audio.every((x) => x.packetsReceived > 0) && s.tiles === peers;
    return { ok, ...s };
  }, 60000);
  const v = c.perConsumer.filter((x) => x.kind === 'video').map((x) => x.framesDecoded);
  const a = c.perConsumer.filter((x) => x.kind === 'audio').map((x) => x.packetsReceived);
  log(`${name}: ${c.tiles} tile(s), framesDecoded per video stream [${v}], audio packetsReceived [${a}]`);
  return c;
}

// `errors`, when given, collects the page's uncaught errors (a test may require none);
// `query` adds URL parameters of the demo page (e.g. 'simulcast=1').
export async function openPage(context, base, room, name, errors, query = '') {
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') log(`${name} console: ${m.text()}`); });
  page.on('pageerror', (e) => {
    log(`${name} page error: ${e.message}`);
    if (errors) errors.push(e.message);
  });
  await page.goto(`${base}/app/?room=${room}&name=${name}${query ? `&${query}` : ''}`);
  return page;
}

// Per-worker gauges from /metrics: {transports: [w0, w1], pipes_in: [...], ...}.
export async function workerGauges(base) {
  const text = await (await fetch(`${base}/metrics`)).text();
  const out = {};
  for (const m of text.matchAll(/^mafalda_worker_(\w+)\{worker="(\d+)"\} (\d+)$/gm)) {
    (out[m[1]] ||= [])[Number(m[2])] = Number(m[3]);
  }
  return out;
}
export const sum = (a) => (a || []).reduce((x, y) => x + y, 0);

// A port the kernel just handed out on `host` (TCP or UDP), closed again for the child to
// bind: a small race with other processes, acceptable on a test machine.
// A probed port is released at once, so the kernel may hand it out again: never return a
// port this process returned before.
const handedOut = new Set();
export async function freePort(host = '127.0.0.1', udp = false) {
  for (let i = 0; i < 50; i++) {
    const port = await probePort(host, udp);
    if (!handedOut.has(port)) { handedOut.add(port); return port; }
  }
  return probePort(host, udp);
}

function probePort(host, udp) {
  return new Promise((resolve, reject) => {
    if (udp) {
      const s = createSocket('udp4');
      s.once('error', reject);
      s.bind(0, host, () => { const { port } = s.address(); s.close(() => resolve(port)); });
    } else {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, host, () => { const { port } = s.address(); s.close(() => resolve(port)); });
    }
  });
}

export const tail = (text, lines) => text.split('\n').slice(-lines).join('\n');

// Starts mafalda-node on loopback with free ports (port 0 everywhere) plus `args` (mode,
// web dir...). Resolves to {child, base, log()} once it logs its demo URL; every output
// line is appended to the log. Rejects when the node exits first or logs no URL in 20 s.
export function spawnNode(nodeBin, args) {
  return new Promise((resolve, reject) => {
    let text = '';
    const child = spawn(nodeBin, [...args, '--rtc-listen-ip', '127.0.0.1', '--announced-ip',
      '127.0.0.1', '--rtc-port-base', '0', '--api-listen', '127.0.0.1:0', '--log-level', 'info'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
    const handle = { child, base: null, log: () => text };
    const timer = setTimeout(() => reject(new Error('node did not log its demo URL in 20 s')), 20000);
    const onData = (chunk) => {
      text += chunk.toString();
      const m = !handle.base && text.match(/open (http:\/\/127\.0\.0\.1:\d+)\/app\//);
      if (m) { clearTimeout(timer); handle.base = m[1]; resolve(handle); }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`mafalda-node exited early (code ${code}, signal ${sig})`));
    });
  });
}
