// Browser test of node -> node API forwarding (issue 8): every client connects to node 1,
// whose one worker fits two transports; the controller places the next clients'
// transports on other nodes' workers and node 1 forwards their calls there (node.ApiForward),
// so their media flows straight to node 2 / node 3 while their API stays on node 1.
// Usage: node forward.test.mjs <mafalda-node> <repo>/node/web <mafalda-controller> [mafalda-ctl]
// alice fills node 1; bob's transports go to node 2; node 3 is started live and carol's go
// there. Every page must decode every other page. carol leaving must free node 3 (the link
// ends after the grace); kill -9 of node 2 must remove bob's tiles from alice's page and end
// node 1's link to it; every process left must stop cleanly.
import { counters, launchChromium, log, openPage, sum, waitFor, waitReceiving,
  workerGauges } from './lib.mjs';
import { createCluster } from './cluster_lib.mjs';

const [nodeBin, webDir, ctlBin, ctlCliBin] = process.argv.slice(2);
if (!nodeBin || !webDir || !ctlBin) {
  console.error('usage: node forward.test.mjs <mafalda-node> <web-dir> <mafalda-controller> [mafalda-ctl]');
  process.exit(2);
}
const cluster = createCluster({ nodeBin, webDir, ctlBin, ctlCliBin, tag: 'forward' });
// One worker per node; capacity 500 pps at the 80% watermark with 150 pps expected per
// transport: one page's two transports (send + receive, made within milliseconds, counted
// by the pending-load account) fit, and once its media flows the measured load (a few
// hundred packets/s) leaves no room for another page.
const NODE_ARGS = ['--workers', '1', '--worker-capacity-pps', '500', '--transport-pps', '150',
  '--pipe-linger-ms', '1000', '--api-grace-ms', '1000'];
let browser = null;

const transportsOf = async (n) => sum((await workerGauges(n.base)).transports);

async function expectTransports(want) {
  const names = want.map(([n, count]) => `${n.name}: ${count}`).join(', ');
  return waitFor(`transports per node (${names})`, async () => {
    const got = {};
    for (const [n, count] of want) got[n.name] = n.killed ? 0 : await transportsOf(n);
    return { ok: want.every(([n, count]) => got[n.name] === count), got };
  }, 10000);
}

async function main() {
  await cluster.startController();
  const n1 = await cluster.startNode('node 1', '127.0.0.1', NODE_ARGS);
  const n2 = await cluster.startNode('node 2', '127.0.0.2', NODE_ARGS);
  log(`node 1 ${n1.nodeId} at ${n1.base}, node 2 ${n2.nodeId} at ${n2.base}`);

  browser = await launchChromium();
  const ctx = [];
  for (let i = 0; i < 3; i++) ctx.push(await browser.newContext({ permissions: ['camera', 'microphone'] }));
  const room = `f${process.pid}`;
  const errors = { alice: [], bob: [], carol: [] };

  const alice = await openPage(ctx[0], n1.base, room, 'alice', errors.alice);
  await waitFor('alice to be ready', async () => {
    const s = await counters(alice);
    if (s.error) throw new Error(`alice: ${s.error}`);
    return { ok: s.ready === true };
  }, 30000);
  await expectTransports([[n1, 2], [n2, 0]]);
  const bob = await openPage(ctx[1], n1.base, room, 'bob', errors.bob);
  await waitReceiving('alice', alice, 1);
  await waitReceiving('bob (API on node 1, media on node 2)', bob, 1);
  let t = await expectTransports([[n1, 2], [n2, 2]]);
  log(`transports after bob: ${JSON.stringify(t.got)}`);

  // A node started now takes the next placement: it has the most free capacity.
  const n3 = await cluster.startNode('node 3', '127.0.0.3', NODE_ARGS);
  log(`node 3 ${n3.nodeId} started live at ${n3.base}`);
  const carol = await openPage(ctx[2], n1.base, room, 'carol', errors.carol);
  await waitReceiving('carol (API on node 1, media on node 3)', carol, 2);
  await waitReceiving('alice', alice, 2);
  await waitReceiving('bob', bob, 2);
  t = await expectTransports([[n1, 2], [n2, 2], [n3, 2]]);
  log(`transports after carol: ${JSON.stringify(t.got)}`);
  const forwarded = (n1.out.match(/transport placed on node \S+ worker/g) || []).length;
  if (forwarded !== 4) throw new Error(`node 1 forwarded ${forwarded} transport creations, want 4`);
  const links = (n1.out.match(/go through link/g) || []).length;
  if (links !== 2) throw new Error(`node 1 opened ${links} links, want 2 (bob's, carol's)`);
  log('node 1 placed 4 transports on other nodes through 2 links (bob -> node 2, carol -> node 3)');
  if (ctlCliBin) log(`mafalda-ctl shards:\n${(await cluster.ctl('shards')).trimEnd()}`);

  const hasAny = (s, ids) => (s.perConsumer || []).some((x) => ids.includes(x.producerId));
  const bobProducers = await bob.evaluate(() => window.mafalda.producers());
  const carolProducers = await carol.evaluate(() => window.mafalda.producers());

  // carol leaves: after node 1's grace its link ends and node 3 closes her transports.
  const leftAt = Date.now();
  await ctx[2].close();
  for (const [name, page] of [['alice', alice], ['bob', bob]]) {
    await waitFor(`${name} to drop carol's tiles`, async () => {
      const s = await counters(page);
      return { ok: s.tiles === 1 && !hasAny(s, carolProducers), tiles: s.tiles };
    }, 10000);
  }
  await expectTransports([[n1, 2], [n2, 2], [n3, 0]]);
  log(`carol gone from every page and node 3 empty ${Date.now() - leftAt} ms after she left`);

  // kill -9 node 2: bob's media node. alice loses his tiles; node 1 ends the link.
  const killedAt = Date.now();
  cluster.kill9(n2);
  await waitFor('alice to drop bob\'s tiles after node 2 died', async () => {
    const s = await counters(alice);
    if (s.error) throw new Error(`alice: page error: ${s.error}`);
    return { ok: s.tiles === 0 && !hasAny(s, bobProducers), tiles: s.tiles };
  }, 15000);
  await waitFor('node 1 to end its link to node 2', async () => ({
    ok: /link \S+ to node \S+ ended: its node was lost/.test(n1.out) }), 5000);
  log(`bob's tiles gone in alice and node 1's link ended ${Date.now() - killedAt} ms after kill -9 of node 2`);
  const s = await counters(alice);
  if (s.error || errors.alice.length || !s.ready) {
    throw new Error(`alice's page is not healthy: error ${s.error}, page errors ${JSON.stringify(errors.alice)}`);
  }
  log('PASS (clients of node 1 ran on nodes 2 and 3; leave and node death handled)');
}

await cluster.run(main, () => browser);
