import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import {
  isDown,
  isNodeDown,
  ManualClock,
  WtdExport,
  WtdNode,
  WtdProxy,
  type DownMessage,
  type GrantFile,
  type NodeDownMessage,
  type Pid,
} from '../../lib/index.js';
import { MemoryLogger } from '../fixtures/helpers.js';
import { closeAll, listed } from '../fixtures/proxy.js';

/** What Alice offers: a process to watch, and a watcher of the caller's pid. */
class Relayed {
  static node: WtdNode;
  static down: Promise<DownMessage> | undefined;

  @WtdExport('relayed')
  static worker(): Pid {
    return Relayed.node.spawn(async (self) => {
      self.exit(await self.receive());
    });
  }

  @WtdExport('relayed')
  static watch(pid: Pid): string {
    Relayed.down = watch(Relayed.node, pid);
    return 'watching';
  }
}

function watch(node: WtdNode, pid: Pid): Promise<DownMessage> {
  return new Promise((resolve) => {
    node.spawn(async (self) => {
      const ref = self.monitor(pid);
      resolve(await self.receive((m): m is DownMessage => isDown(m, ref)));
    });
  });
}

function watchNode(node: WtdNode, nodeId: string): Promise<NodeDownMessage> {
  return new Promise((resolve) => {
    node.spawn(async (self) => {
      self.monitorNode(nodeId);
      resolve(await self.receive((m): m is NodeDownMessage => isNodeDown(m, nodeId)));
    });
  });
}

describe('Remote monitors through the proxy', () => {
  let clock: ManualClock;
  let proxy: WtdProxy;
  let alice: WtdNode;
  let bob: WtdNode;
  let grant: GrantFile;
  beforeEach(async () => {
    clock = new ManualClock(Date.now());
    const logger = new MemoryLogger();
    proxy = await WtdProxy.start({ dataDir: ':memory:', port: 0, logger, wallClock: clock });
    alice = await WtdNode.start({ name: 'alice', dataDir: ':memory:', logger });
    bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:', logger });
    alice.load(Relayed);
    Relayed.node = alice;
    Relayed.down = undefined;
    // Neither listens: everything goes through the proxy.
    await alice.joinProxy({ url: proxy.url, email: 'alice@example.org', pingIntervalMs: 50 });
    await bob.joinProxy({ url: proxy.url, email: 'bob@example.org', pingIntervalMs: 50 });
    grant = await alice.grant({ missions: ['relayed'], rate: '1000/s' });
  });
  afterEach(() => closeAll(bob, alice, proxy));

  it('Bob monitors a pid Alice handed him: the DOWN with its reason is relayed back', async () => {
    const remote = await bob.connect(grant);
    expect(remote.via).to.equal('proxy');
    const worker = await remote.call<Pid>('Relayed', 'worker');
    const down = watch(bob, worker);
    await bob.onIdle();
    expect(alice.monitorCounts().in).to.equal(1);
    bob.send(worker, ['finished', 3]);
    expect((await down).reason).to.deep.equal(['finished', 3]);
  });

  it('Alice monitors a pid Bob passed her: the monitor request and the DOWN are relayed', async () => {
    const remote = await bob.connect(grant);
    const mine = bob.spawn(async (self) => {
      self.exit({ bye: await self.receive() });
    });
    await remote.call('Relayed', 'watch', [mine]);
    await alice.onIdle();
    expect(bob.monitorCounts().in).to.equal(1);
    bob.send(mine, 'now');
    expect((await Relayed.down!).reason).to.deep.equal({ bye: 'now' });
  });

  it('the directory says the node went down: DOWN noconnection and nodedown', async () => {
    const remote = await bob.connect(grant);
    const worker = await remote.call<Pid>('Relayed', 'worker');
    const down = watch(bob, worker);
    const nodedown = watchNode(bob, alice.id);
    const idle = bob.spawn(async (self) => {
      await self.receive();
    });
    const dropped = bob.monitorNode(alice.id, idle);
    expect([bob.demonitorNode(dropped), bob.demonitorNode(dropped)]).to.deep.equal([true, false]);
    await bob.onIdle();
    expect(alice.monitorCounts().in).to.equal(1);
    await alice.leaveProxy(); // Alice stops pinging: silent for the proxy's downAfterMs, she is down
    let settled = false;
    void down.then(() => (settled = true));
    for (let step = 0; step < 8 && !settled; step++) {
      clock.advance(1000);
      const at = clock.now();
      await Promise.race([down, proxy.until((s) => s.nodes.find((n) => n.id === bob.id)!.lastSeen >= at)]);
    }
    expect((await down).reason).to.equal('noconnection');
    expect((await nodedown).node).to.equal(alice.id);
    expect(bob.monitorCounts()).to.deep.equal({ out: 0, in: 0, nodes: 0 });
  });
});

describe('Remote monitors: a node that restarts', () => {
  it('its monitors say noconnection as soon as the directory shows its new incarnation', async () => {
    const logger = new MemoryLogger();
    const proxy = await WtdProxy.start({ dataDir: ':memory:', port: 0, logger });
    const dir = mkdtempSync(join(tmpdir(), 'wtd-restart-'));
    let alice = await WtdNode.start({ name: 'alice', dataDir: dir, logger });
    const bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:', logger });
    try {
      alice.load(Relayed);
      Relayed.node = alice;
      await alice.joinProxy({ url: proxy.url, email: 'alice@example.org', pingIntervalMs: 50 });
      await bob.joinProxy({ url: proxy.url, email: 'bob@example.org', pingIntervalMs: 50 });
      const grant = await alice.grant({ missions: ['relayed'], rate: '1000/s' });
      const remote = await bob.connect(grant);
      const worker = await remote.call<Pid>('Relayed', 'worker');
      const down = watch(bob, worker);
      await bob.onIdle();
      const before = alice.incarnation;
      await alice.close();
      alice = await WtdNode.start({ name: 'alice', dataDir: dir, logger });
      await alice.joinProxy({ url: proxy.url, email: 'alice@example.org', pingIntervalMs: 50 });
      expect((await down).reason).to.equal('noconnection');
      expect((await listed(bob, alice.id)).incarnation).to.not.equal(before);
    } finally {
      await closeAll(bob, alice, proxy);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
