import { expect } from 'chai';
import { WtdNode, WtdProxy } from '../../lib/index.js';
import { BUSY_WAIT_MS, BusyWait, busyWait } from '../../lib/runtime/busy-wait.js';
import { rejection } from '../fixtures/helpers.js';
import { closeAll, cluster, fakeJws, putFrom, RawClient } from '../fixtures/proxy.js';
import { RawStream } from '../fixtures/relay-stream.js';
import { Probe } from '../fixtures/remote.js';
import { connect, type Conn } from '../fixtures/sockets.js';

/** Resolves once `conn` has received text that `done` accepts, or once it closed. */
function until(conn: Conn, done: (text: string) => boolean): Promise<string> {
  return new Promise((resolve) => {
    const check = (): void => {
      if (!done(conn.received())) return;
      conn.socket.off('data', check);
      resolve(conn.received());
    };
    conn.socket.on('data', check);
    void conn.closed.then(() => resolve(conn.received()));
    check();
  });
}

/** A busy wait on a hand-driven clock and loop, whose turns run when the spec says. */
function driven(): {
  wait: BusyWait;
  turns: (() => void)[];
  at: { now: number; active: number };
  run(): void;
} {
  const at = { now: 1000, active: 0 };
  const turns: (() => void)[] = [];
  const wait = new BusyWait(
    () => at.now,
    (turn) => turns.push(turn),
    () => at.active,
  );
  return { wait, turns, at, run: () => turns.shift()!() };
}

describe('Busy waiting after network I/O', () => {
  it('turns the loop from a poke until the budget has passed since the last one, then stops', async () => {
    const d = driven();
    const release = d.wait.enlist(0.5);
    d.wait.poke();
    expect(d.turns).to.have.length(1);
    expect(d.wait.turning).to.equal(true);
    d.wait.poke(); // already turning: no second chain of turns
    expect(d.turns).to.have.length(1);
    d.at.now += 0.3;
    d.run();
    expect(d.turns).to.have.length(1);
    d.wait.poke(); // activity again: the budget counts from now
    d.at.now += 0.4;
    d.run();
    expect(d.turns).to.have.length(1);
    const idle = d.wait.idle();
    d.at.now += 0.2;
    d.run();
    expect(d.turns).to.have.length(0);
    expect(d.wait.turning).to.equal(false);
    await idle;
    expect(d.wait.turns).to.equal(2);
    release();
  });

  it('waits for the longest enlisted budget; with none, or only 0, a poke does nothing', () => {
    const d = driven();
    d.wait.poke();
    const off = d.wait.enlist(0);
    d.wait.poke();
    expect(d.turns).to.have.length(0);
    const short = d.wait.enlist(0.5);
    const long = d.wait.enlist(2);
    expect(d.wait.budget).to.equal(2);
    long();
    long(); // taking it back twice takes back one budget only
    expect(d.wait.budget).to.equal(0.5);
    short();
    expect(d.wait.budget).to.equal(0);
    off();
    d.wait.poke();
    expect(d.turns).to.have.length(0);
  });

  it('waits at most twice as long as the loop worked lately: traffic that makes it do little cannot keep it turning', () => {
    const d = driven();
    const release = d.wait.enlist(50);
    // Each turn takes 10 µs, all of it waiting (the loop is active, doing nothing else).
    const spin = (): number => {
      let n = 0;
      while (d.turns.length > 0) {
        d.at.now += 0.01;
        d.at.active += 0.01;
        d.run();
        n++;
      }
      return n;
    };
    d.wait.poke();
    expect(spin()).to.be.below(5);
    // 1 ms of work: up to 2 ms of waiting after it, though the budget is 50 ms.
    d.at.active += 1;
    d.at.now += 1;
    d.wait.poke();
    const turns = spin();
    expect(turns).to.be.within(190, 210);
    expect(d.wait.waited).to.be.within(1.9, 2.2);
    release();
  });

  it('a budget taken back cuts the wait under way to what the others allow', () => {
    const d = driven();
    const long = d.wait.enlist(100);
    const short = d.wait.enlist(0.5);
    d.at.active = 1000;
    d.wait.poke();
    long();
    d.at.now += 0.6;
    d.run();
    expect(d.turns).to.have.length(0);
    expect(d.wait.turning).to.equal(false);
    short();
  });

  it('stops at once when the last budget is taken back while it turns', () => {
    const d = driven();
    const release = d.wait.enlist(5);
    d.wait.poke();
    release();
    d.run();
    expect(d.turns).to.have.length(0);
    expect(d.wait.turning).to.equal(false);
  });

  it('a node and a proxy enlist their busyWaitMs (default 0.5) while they run, and take it back when closed', async () => {
    const before = busyWait.budget;
    const node = await WtdNode.start({ name: 'n', dataDir: ':memory:', busyWaitMs: 70 });
    const proxy = await WtdProxy.start({ dataDir: ':memory:', port: 0, busyWaitMs: 80, logger: { error: () => {} } });
    const plain = await WtdNode.start({ name: 'p', dataDir: ':memory:' });
    try {
      expect(busyWait.budget).to.equal(Math.max(before, 80));
      await proxy.close();
      expect(busyWait.budget).to.equal(Math.max(before, 70));
      await node.close();
      expect(busyWait.budget).to.equal(Math.max(before, BUSY_WAIT_MS));
      await plain.close();
      expect(busyWait.budget).to.equal(before);
      // A node that cannot start (a bound of its server is wrong) keeps no budget.
      const bad = await rejection(
        WtdNode.start({ name: 'b', dataDir: ':memory:', busyWaitMs: 90, limits: { maxConnections: -1 } as never }),
      );
      expect(bad).to.be.instanceOf(Error);
      expect(busyWait.budget).to.equal(before);
    } finally {
      await closeAll(plain, node, proxy);
    }
  });

  it('a busyWaitMs that is not a number from 0 to 100 is a RangeError, before anything is opened', async () => {
    const before = busyWait.budget;
    for (const bad of [-1, 101, Number.NaN, Infinity, '1' as unknown as number]) {
      expect(await rejection(WtdNode.start({ name: 'n', dataDir: ':memory:', busyWaitMs: bad }))).to.be.instanceOf(
        RangeError,
      );
      expect(await rejection(WtdProxy.start({ dataDir: ':memory:', port: 0, busyWaitMs: bad }))).to.be.instanceOf(
        RangeError,
      );
    }
    expect(busyWait.budget).to.equal(before);
  });

  it('a call relayed through a proxy leaves the loop turning for the budget after its answer, then it rests', async () => {
    const c = await cluster({ busyWaitMs: 0 }, { busyWaitMs: 40 });
    try {
      await c.proxy.until((s) => s.streams === 3);
      const remote = await c.bob.connect(c.grant, { via: 'proxy' });
      await remote.call('Probe', 'touch', [1]);
      await busyWait.idle();
      const turns = busyWait.turns;
      await remote.call('Probe', 'touch', [2]);
      expect(busyWait.turning).to.equal(true);
      await busyWait.idle();
      expect(busyWait.turns).to.be.greaterThan(turns);
      expect(busyWait.turning).to.equal(false);
    } finally {
      await closeAll(c.bob, c.carol, c.alice, c.proxy);
    }
  });

  it('what strangers send makes neither a node nor a proxy busy-wait: refused requests and calls, lines that relay nothing', async () => {
    const proxy = await WtdProxy.start({ dataDir: ':memory:', port: 0, busyWaitMs: 40, logger: { error: () => {} } });
    const alice = await WtdNode.start({ name: 'alice', dataDir: ':memory:', busyWaitMs: 40 });
    const streams: { close(): void }[] = [];
    try {
      alice.load(Probe);
      await alice.listen({ port: 0 });
      const stranger = await RawClient.register(proxy, 'stranger@example.org', undefined, 100, '127.0.0.2');
      const dest = await RawClient.register(proxy, 'dest@example.org');
      const relay = await RawStream.open(stranger, { from: '127.0.0.2' });
      if (!(relay instanceof RawStream)) throw new Error(`the stream was refused: ${relay.status}`);
      streams.push(relay);
      await busyWait.idle();
      const turns = busyWait.turns;
      // A request over HTTP that no grant signed.
      const put = await putFrom(`${alice.address}/apply/Probe/touch`, fakeJws('nobody'), '127.0.0.2');
      expect(put.status).to.equal(401);
      // A call on a stream that is no session's.
      const port = Number(new URL(alice.address!).port);
      const conn = await connect(port, '127.0.0.2');
      streams.push({ close: () => conn.socket.destroy() });
      conn.socket.write(
        'PUT /stream HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: wtd-calls\r\nContent-Length: 0\r\n\r\n',
      );
      await until(conn, (t) => t.includes('\r\n\r\n'));
      conn.socket.write(`1 /apply/Probe/touch ${fakeJws('nobody')}\n`);
      const answered = await until(conn, (t) => /\n1 \d+ /.test(t));
      expect(answered).to.match(/\n1 426 /);
      // On the proxy: a line that keeps the stream, and a message its destination does not accept.
      relay.send({ ack: [], messages: [] });
      relay.send({ ack: [], messages: [RawClient.request('m1', dest.id, stranger.kid)] });
      const [[refused]] = (await relay.line(0)).results;
      expect(refused.error.code).to.equal('ERR_PROXY_NOT_ACCEPTED');
      expect(busyWait.turning).to.equal(false);
      expect(busyWait.turns).to.equal(turns);
      // Once the destination accepts the key, the message is relayed, and the proxy waits for its answer.
      await dest.accept(stranger.kid);
      await busyWait.idle();
      const before = busyWait.turns;
      relay.send({ ack: [], messages: [RawClient.request('m2', dest.id, stranger.kid)] });
      expect((await relay.line(1)).results).to.deep.equal([[{ id: 'm2' }]]);
      expect(busyWait.turns).to.be.greaterThan(before);
    } finally {
      for (const s of streams) s.close();
      await closeAll(alice, proxy);
    }
  });

  it('so does a direct call on a stream', async () => {
    const alice = await WtdNode.start({ name: 'alice', dataDir: ':memory:', busyWaitMs: 40 });
    const bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:', busyWaitMs: 40 });
    try {
      const { Probe } = await import('../fixtures/remote.js');
      alice.load(Probe);
      Probe.node = alice;
      await alice.listen({ port: 0 });
      const grant = await alice.grant({ missions: ['probe'], rate: { count: 100, intervalMs: 1000, burst: 100 } });
      const remote = await bob.connect(grant);
      await remote.call('Probe', 'touch', [1]);
      await busyWait.idle();
      const turns = busyWait.turns;
      await remote.call('Probe', 'touch', [2]);
      expect(busyWait.turning).to.equal(true);
      await busyWait.idle();
      expect(busyWait.turns).to.be.greaterThan(turns);
    } finally {
      await closeAll(bob, alice);
    }
  });
});
