// Processes of a cluster test: a mafalda-controller and mafalda-nodes on their own loopback
// addresses, every child's output kept for the failure report, and mafalda-ctl.
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { freePort, log, stopChild, tail, waitFor } from './lib.mjs';

export function createCluster({ nodeBin, webDir, ctlBin, ctlCliBin, tag, controllerArgs = [] }) {
  const dataDir = mkdtempSync(`/tmp/mf-browser-${tag}-`);
  const procs = []; // {name, child, out, exit, stopping, killed}
  const c = { procs, ctlRpc: '', gossip: '' };

  // An exit nobody asked for is logged at once (a crash or a sanitizer abort shows as a
  // non-zero status).
  c.spawnLogged = (name, bin, args) => {
    const p = { name, child: spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] }), out: '',
                exit: null, stopping: false };
    const onData = (chunk) => { p.out += chunk.toString(); };
    p.child.stdout.on('data', onData);
    p.child.stderr.on('data', onData);
    p.child.on('exit', (code, sig) => {
      p.exit = `${code ?? sig}`;
      if (!p.stopping) log(`${name} exited (status ${p.exit})`);
    });
    procs.push(p);
    return p;
  };

  c.mustRun = (p) => {
    if (p.exit !== null) throw new Error(`${p.name} exited early (status ${p.exit})`);
  };

  c.startController = async () => {
    const raft = `127.0.0.1:${await freePort()}`;
    c.ctlRpc = `127.0.0.1:${await freePort()}`;
    c.gossip = `127.0.0.1:${await freePort('127.0.0.1', true)}`;
    c.controller = c.spawnLogged('controller', ctlBin, ['--listen', raft, '--rpc-listen', c.ctlRpc,
      '--data-dir', `${dataDir}/ctl`, '--election-timeout', '300', '--gossip-listen', c.gossip,
      '--log-level', 'info', ...controllerArgs]);
    return c.controller;
  };

  // A node on `ip` (every address of it) with `args` (workers, capacity...); resolves once
  // it logs its demo URL (p.base) and, when `active`, once the controller took it.
  c.startNode = async (name, ip, args) => {
    // --drain-timeout-ms 5000: SIGTERM drains (cluster mode) and stopChild kills after 10 s.
    const p = c.spawnLogged(name, nodeBin, ['--controller=false', '--controllers', c.ctlRpc,
      '--join', c.gossip, '--gossip-port', '0', '--node-rpc-port', '0',
      '--rtc-listen-ip', ip, '--announced-ip', ip, '--rtc-port-base', '0',
      '--api-listen', `${ip}:0`, '--web-dir', webDir, '--report-interval-ms', '500',
      '--drain-timeout-ms', '5000', '--log-level', 'info', ...args]);
    const re = new RegExp(`open (http://${ip.replaceAll('.', '\\.')}:\\d+)/app/`);
    const r = await waitFor(`${name} to log its demo URL`, async () => {
      c.mustRun(p);
      const m = p.out.match(re);
      return { ok: !!m, base: m && m[1] };
    }, 20000);
    p.base = r.base;
    const a = await waitFor(`${name} to be active in the controller`, async () => {
      c.mustRun(p);
      c.mustRun(c.controller);
      const m = p.out.match(/node (\S+) is active/);
      return { ok: !!m, id: m && m[1] };
    }, 30000);
    p.nodeId = a.id;
    return p;
  };

  c.ctl = (...args) => new Promise((resolve) => {
    execFile(ctlCliBin, ['--controller', c.ctlRpc, ...args], { timeout: 10000 },
      (err, stdout, stderr) => resolve(`${stdout}${stderr}${err ? `(exit ${err.code})` : ''}`));
  });

  c.dumpLogs = () => {
    for (const p of procs) {
      console.error(`--- ${p.name} log (tail) ---`);
      console.error(tail(p.out, Number(process.env.MF_LOG_TAIL || 60)));
    }
  };

  // Nodes last started first (they drain: their pages are gone), then the controller the
  // nodes report to. False when one did not stop cleanly (killed ones on purpose excepted).
  c.stopAll = async () => {
    let clean = true;
    for (const p of [...procs].reverse()) {
      p.stopping = true;
      const status = await stopChild(p.child);
      // MF_LOG_DIR: every child's whole log kept there (debugging a flaky run)
      if (process.env.MF_LOG_DIR) writeFileSync(`${process.env.MF_LOG_DIR}/${tag}-${p.name.replace(' ', '')}.log`, p.out);
      if (p.killed) continue;
      if (status !== '0') {
        clean = false;
        console.error(`FAIL: ${p.name} did not shut down cleanly on SIGTERM (status ${status})`);
        console.error(tail(p.out, 80));
      } else {
        log(`${p.name} stopped cleanly`);
      }
    }
    rmSync(dataDir, { recursive: true, force: true });
    return clean;
  };

  // Runs the test's main(), then closes the browser (getBrowser() may be null) and stops
  // every process (last started first: nodes drain, then the controller), and exits
  // with 1 on any failure, reporting the children's logs.
  c.run = async (main, getBrowser) => {
    let failed = false;
    try {
      await main();
    } catch (e) {
      failed = true;
      console.error(`FAIL: ${e.stack || e}`);
      c.dumpLogs();
    }
    const browser = getBrowser();
    if (browser) await browser.close().catch(() => {});
    if (!(await c.stopAll())) failed = true;
    process.exit(failed ? 1 : 0);
  };

  c.kill9 = (p) => {
    p.stopping = true;
    p.killed = true;
    p.child.kill('SIGKILL');
  };
  return c;
}
