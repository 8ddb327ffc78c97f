import { expect } from 'chai';
import {
  DownMessage,
  isDown,
  isNodeDown,
  ManualClock,
  Node,
  NodeDownMessage,
  TIMEOUT,
  WireError,
  WtdError,
  WtdExport,
  WtdNode,
  type GrantFile,
  type Pid,
  type Ref,
} from '../../lib/index.js';
import { newClaims } from '../../lib/wire/claims.js';
import { WireCodec } from '../../lib/wire/codec.js';
import { flush, MemoryLogger } from '../fixtures/helpers.js';
import { put, withTwoNodes } from '../fixtures/remote.js';

/** What Alice offers for these specs: processes to watch, and a watcher of the caller's. */
class Watched {
  static node: WtdNode;
  /** What Alice's watcher of the caller's pid received. */
  static down: Promise<DownMessage> | undefined;

  /** A process that exits with the first message it gets as its reason (`'crash'`: it throws an Error). */
  @WtdExport('probe')
  static worker(): Pid {
    return Watched.node.spawn(async (self) => {
      const why = await self.receive();
      if (why === 'crash') throw new Error('boom');
      self.exit(why);
    });
  }

  /** Alice monitors the caller's pid. */
  @WtdExport('probe')
  static watch(pid: Pid): string {
    Watched.down = watch(Watched.node, pid).down;
    return 'watching';
  }
}

/** A process of `node` that monitors `pid` and resolves with its DOWN. */
function watch(node: WtdNode, pid: Pid): { ref: Promise<Ref>; down: Promise<DownMessage>; watcher: Pid } {
  let gotRef!: (ref: Ref) => void;
  let gotDown!: (d: DownMessage) => void;
  const ref = new Promise<Ref>((r) => (gotRef = r));
  const down = new Promise<DownMessage>((r) => (gotDown = r));
  const watcher = node.spawn(async (self) => {
    const r = self.monitor(pid);
    gotRef(r);
    gotDown(await self.receive((m): m is DownMessage => isDown(m, r)));
  });
  return { ref, down, watcher };
}

/** A process of `node` that monitors node `nodeId` and resolves with its nodedown. */
function watchNode(node: WtdNode, nodeId: string): Promise<NodeDownMessage> {
  return new Promise((resolve) => {
    node.spawn(async (self) => {
      self.monitorNode(nodeId);
      resolve(await self.receive((m): m is NodeDownMessage => isNodeDown(m, nodeId)));
    });
  });
}

/** A logger that can be waited on for a line. */
class WaitingLogger extends MemoryLogger {
  #waiters: { fragment: string; resolve(): void }[] = [];
  override error(message: string): void {
    super.error(message);
    for (const w of [...this.#waiters]) {
      if (!message.includes(w.fragment)) continue;
      this.#waiters.splice(this.#waiters.indexOf(w), 1);
      w.resolve();
    }
  }
  line(fragment: string): Promise<void> {
    if (this.has(fragment)) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ fragment, resolve }));
  }
}

describe('Remote monitors: DOWN from another node', () => {
  const nodes = withTwoNodes();
  beforeEach(() => {
    nodes.alice.load(Watched);
    Watched.node = nodes.alice;
    Watched.down = undefined;
  });

  it("Bob monitors a pid Alice handed him: the DOWN carries the process's exit reason", async () => {
    const remote = await nodes.bob.connect(nodes.grant);
    const worker = await remote.call<Pid>('Watched', 'worker');
    const w = watch(nodes.bob, worker);
    await w.ref;
    await nodes.bob.onIdle(); // the monitor request was accepted
    nodes.bob.send(worker, { done: 'yes', n: 7 });
    const down = await w.down;
    expect(down.pid).to.equal(worker);
    expect(down.reason).to.deep.equal({ done: 'yes', n: 7 });
    expect(nodes.bob.monitorCounts()).to.deep.equal({ out: 0, in: 0, nodes: 0 });
    expect(nodes.alice.monitorCounts()).to.deep.equal({ out: 0, in: 0, nodes: 0 });
  });

  it('a reason that cannot travel (an Error) arrives as a string', async () => {
    const remote = await nodes.bob.connect(nodes.grant);
    const worker = await remote.call<Pid>('Watched', 'worker');
    const w = watch(nodes.bob, worker);
    await nodes.bob.onIdle();
    nodes.bob.send(worker, 'crash');
    const down = await w.down;
    expect(down.reason).to.be.a('string').and.include('boom');
  });

  it('Alice monitors a pid Bob passed her in a call: the DOWN comes back the way messages to it do', async () => {
    const remote = await nodes.bob.connect(nodes.grant);
    const mine = nodes.bob.spawn(async (self) => {
      self.exit({ finished: await self.receive() });
    });
    expect(await remote.call('Watched', 'watch', [mine])).to.equal('watching');
    await nodes.alice.onIdle(); // Bob took the monitor request from Alice's outbox
    expect(nodes.bob.monitorCounts().in).to.equal(1);
    nodes.bob.send(mine, 'work');
    const down = await Watched.down!;
    expect(down.reason).to.deep.equal({ finished: 'work' });
    expect(String(down.pid)).to.equal(String(mine));
  });

  it('a pid that already exited: DOWN noproc', async () => {
    const remote = await nodes.bob.connect(nodes.grant);
    const worker = await remote.call<Pid>('Watched', 'worker');
    nodes.bob.send(worker, 'early');
    await nodes.bob.onIdle();
    await nodes.alice.exited(nodes.alice.processes().find((p) => p.id === worker.id)!).catch(() => undefined);
    const w = watch(nodes.bob, worker);
    expect((await w.down).reason).to.equal('noproc');
  });

  it('demonitor takes it down on both sides: no DOWN follows', async () => {
    const remote = await nodes.bob.connect(nodes.grant);
    const worker = await remote.call<Pid>('Watched', 'worker');
    let result!: (x: unknown) => void;
    const got = new Promise((r) => (result = r));
    nodes.bob.spawn(async (self) => {
      const ref = self.monitor(worker);
      await nodes.bob.onIdle();
      expect(nodes.alice.monitorCounts().in).to.equal(1);
      expect(self.demonitor(ref)).to.equal(true);
      expect(self.demonitor(ref)).to.equal(false);
      await nodes.bob.onIdle();
      expect(nodes.alice.monitorCounts().in).to.equal(0);
      nodes.bob.send(worker, 'bye');
      await nodes.bob.onIdle();
      await nodes.alice.onIdle();
      result(await self.receive(undefined, 0));
    });
    expect(await got).to.equal(TIMEOUT);
    expect(nodes.bob.monitorCounts().out).to.equal(0);
  });

  it('the grant that carried the pid is revoked: DOWN noconnection on both sides', async () => {
    const remote = await nodes.bob.connect(nodes.grant);
    const worker = await remote.call<Pid>('Watched', 'worker');
    const bobs = watch(nodes.bob, worker);
    const mine = nodes.bob.spawn(async (self) => {
      await self.receive();
    });
    await remote.call('Watched', 'watch', [mine]);
    await nodes.bob.onIdle();
    await nodes.alice.onIdle();
    expect([nodes.alice.monitorCounts().in, nodes.bob.monitorCounts().in]).to.deep.equal([1, 1]);
    nodes.alice.revoke(nodes.grant.kid);
    // Alice holds the grant record: she knows at once. Bob learns at his next inbox poll (refused).
    expect((await Watched.down!).reason).to.equal('noconnection');
    expect((await bobs.down).reason).to.equal('noconnection');
    expect(nodes.alice.monitorCounts()).to.deep.equal({ out: 0, in: 0, nodes: 0 });
    expect(nodes.bob.monitorCounts().in).to.equal(0);
  });

  it('links stay local: linking to a pid of another node is refused (ERR_NOT_LOCAL)', async () => {
    const remote = await nodes.bob.connect(nodes.grant);
    const worker = await remote.call<Pid>('Watched', 'worker');
    let thrown: unknown;
    const done = new Promise<void>((resolve) => {
      nodes.bob.spawn(async (self) => {
        try {
          self.link(worker);
        } catch (err) {
          thrown = err;
        }
        resolve();
      });
    });
    await done;
    expect(thrown).to.be.instanceOf(WtdError).with.property('code', 'ERR_NOT_LOCAL');
    expect(() => nodes.bob.spawn(async () => undefined, { link: worker, name: 'linked' }))
      .to.throw(WtdError)
      .with.property('code', 'ERR_NOT_LOCAL');
    expect(nodes.bob.whereis('linked')).to.equal(undefined);
  });
});

describe('Remote monitors: hand-made monitor requests (signed, as on nodes with encryption off)', () => {
  const nodes = withTwoNodes({ encryption: false });

  it('a monitor request for a pid not handed to the sender is refused: ERR_PID_NOT_GRANTED (403)', async () => {
    const remote = await nodes.bob.connect(nodes.grant);
    const inbox = nodes.bob.spawn(async (self) => {
      await self.receive();
    });
    await remote.call('Probe', 'pingBack', [inbox, 0]);
    const path = `/monitor/${inbox.id}`;
    const send = async (body: unknown) => {
      const claims = newClaims<'pid'>(nodes.alice.wallClock, {
        aud: nodes.bob.id,
        iss: nodes.alice.id,
        method: 'PUT',
        path,
        body: body as never,
      });
      return put(nodes.bob.address + path, await nodes.signAsAlice('pid', claims));
    };
    const res = await send({ op: 'monitor', ref: 'r1', token: 'forged-token' });
    expect([res.status, res.code]).to.deep.equal([403, 'ERR_PID_NOT_GRANTED']);
    for (const bad of [{ op: 'watch', ref: 'r1', token: 'x' }, { op: 'monitor', ref: 'no spaces', token: 'x' }, null]) {
      const refused = await send(bad);
      expect([refused.status, refused.code], JSON.stringify(bad)).to.deep.equal([400, 'ERR_BAD_ARGUMENTS']);
    }
    // A `down` for a monitor Bob does not hold changes nothing.
    const plain = new WireCodec();
    expect((await send({ op: 'down', ref: 'r1', token: '', reason: plain.encode('x') })).status).to.equal(204);
    expect(nodes.bob.monitorCounts()).to.deep.equal({ out: 0, in: 0, nodes: 0 });
  });
});

describe('Remote monitors: bounds', () => {
  let alice: WtdNode;
  let bob: WtdNode;
  let grant: GrantFile;
  async function start(aliceMax?: number, bobMax?: number): Promise<void> {
    const logger = new MemoryLogger();
    alice = await WtdNode.start({ name: 'alice', dataDir: ':memory:', logger, maxMonitorsPerPeer: aliceMax });
    bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:', logger, maxMonitorsPerPeer: bobMax });
    alice.load(Watched);
    Watched.node = alice;
    await alice.listen({ port: 0 });
    grant = await alice.grant({ missions: ['probe'], rate: '1000/s' });
  }
  afterEach(async () => {
    await alice?.close();
    await bob?.close();
  });

  it('this node holds at most maxMonitorsPerPeer monitors on one peer: monitor throws ERR_TOO_MANY_MONITORS', async () => {
    await start(undefined, 2);
    const remote = await bob.connect(grant);
    const worker = await remote.call<Pid>('Watched', 'worker');
    let thrown: unknown;
    await new Promise<void>((resolve) => {
      bob.spawn(async (self) => {
        self.monitor(worker);
        self.monitor(worker);
        try {
          self.monitor(worker);
        } catch (err) {
          thrown = err;
        }
        resolve();
      });
    });
    expect(thrown).to.be.instanceOf(WtdError).with.property('code', 'ERR_TOO_MANY_MONITORS');
    expect(bob.monitorCounts().out).to.equal(2);
  });

  it('a peer holds at most maxMonitorsPerPeer monitors here: over it refused, DOWN with ERR_TOO_MANY_MONITORS', async () => {
    await start(2, undefined);
    const remote = await bob.connect(grant);
    const worker = await remote.call<Pid>('Watched', 'worker');
    const downs = [watch(bob, worker), watch(bob, worker), watch(bob, worker)];
    const refused = await downs[2]!.down;
    expect(refused.reason).to.be.instanceOf(WireError).with.property('code', 'ERR_TOO_MANY_MONITORS');
    expect(alice.monitorCounts().in).to.equal(2);
    bob.send(worker, 'done');
    expect((await downs[0]!.down).reason).to.equal('done');
    expect((await downs[1]!.down).reason).to.equal('done');
  });
});

describe('Remote monitors: a node that goes down', () => {
  it('a direct node whose polls fail for peerDownAfterMs: DOWN noconnection and nodedown', async () => {
    const clock = new ManualClock(Date.now());
    const logger = new WaitingLogger();
    const alice = await WtdNode.start({ name: 'alice', dataDir: ':memory:', logger, wallClock: clock });
    const bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:', logger, wallClock: clock });
    try {
      alice.load(Watched);
      Watched.node = alice;
      await alice.listen({ port: 0 });
      const grant = await alice.grant({ missions: ['probe'], rate: '1000/s' });
      const remote = await bob.connect(grant);
      const worker = await remote.call<Pid>('Watched', 'worker');
      const w = watch(bob, worker);
      const nodedown = watchNode(bob, alice.id);
      await bob.onIdle();
      expect(alice.monitorCounts().in).to.equal(1);
      await alice.close();
      await logger.line(`could not poll node ${alice.id}`);
      let settled = false;
      void w.down.then(() => (settled = true));
      clock.advance(2900);
      await bob.onIdle();
      expect(settled).to.equal(false);
      clock.advance(100);
      expect((await w.down).reason).to.equal('noconnection');
      const nd = await nodedown;
      expect([nd.tag, nd.node]).to.deep.equal(['nodedown', alice.id]);
    } finally {
      await alice.close();
      await bob.close();
    }
  });

  it('a direct grantee that keeps no poll open for peerDownAfterMs: its pids’ monitors say noconnection', async () => {
    const clock = new ManualClock(Date.now());
    const logger = new WaitingLogger();
    const alice = await WtdNode.start({ name: 'alice', dataDir: ':memory:', logger, wallClock: clock });
    const bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:', logger, wallClock: clock });
    try {
      alice.load(Watched);
      Watched.node = alice;
      Watched.down = undefined;
      await alice.listen({ port: 0 });
      const grant = await alice.grant({ missions: ['probe'], rate: '1000/s' });
      const remote = await bob.connect(grant);
      const mine = bob.spawn(async (self) => {
        await self.receive();
      });
      await remote.call('Watched', 'watch', [mine]);
      await alice.onIdle();
      expect(bob.monitorCounts().in).to.equal(1);
      const nodedown = watchNode(alice, bob.id);
      await bob.close(); // its poll is abandoned; Alice holds it until its hold ends
      let settled = false;
      void Watched.down!.then(() => (settled = true));
      clock.advance(20_000);
      await flush();
      clock.advance(2900);
      await flush();
      expect(settled).to.equal(false);
      clock.advance(1100);
      expect((await Watched.down!).reason).to.equal('noconnection');
      expect((await nodedown).node).to.equal(bob.id);
    } finally {
      await alice.close();
      await bob.close();
    }
  });

  it('monitorNode of a node this one cannot reach: nodedown at once; a plain Node has none (ERR_NOT_SUPPORTED)', async () => {
    const bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:' });
    const plain = new Node({ name: 'plain' });
    try {
      const got = new Promise<unknown>((resolve) => {
        const pid = bob.spawn(async (self) => resolve(await self.receive()));
        bob.monitorNode('nobody-knows-me', pid);
      });
      const msg = await got;
      expect(msg).to.be.instanceOf(NodeDownMessage).with.property('node', 'nobody-knows-me');
      expect(isNodeDown(msg, 'nobody-knows-me')).to.equal(true);
      let thrown: unknown;
      await new Promise<void>((resolve) => {
        plain.spawn(async (self) => {
          try {
            self.monitorNode('x');
          } catch (err) {
            thrown = err;
          }
          resolve();
        });
      });
      expect(thrown).to.be.instanceOf(WtdError).with.property('code', 'ERR_NOT_SUPPORTED');
    } finally {
      plain.stop();
      await bob.close();
    }
  });
});
