import { expect } from 'chai';
import { WtdNode, type GrantFile, type ServerLimits } from '../../lib/index.js';
import { rejection } from '../fixtures/helpers.js';
import { Probe, probeRuns } from '../fixtures/remote.js';
import {
  CapturingLogger,
  closeConns,
  connect,
  connectMany,
  headers,
  statusLine,
  type Conn,
} from '../fixtures/sockets.js';

/** Alice listening with `limits`, Bob holding a grant of hers; the attacker is whoever opens sockets from 127.0.0.2+. */
async function aliceAndBob(limits: Partial<ServerLimits> = {}) {
  const logger = new CapturingLogger();
  const alice = await WtdNode.start({ name: 'alice', dataDir: ':memory:', logger, limits });
  const bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:', logger: new CapturingLogger() });
  alice.load(Probe);
  await alice.listen({ port: 0, host: '127.0.0.1' });
  const grant: GrantFile = await alice.grant({
    missions: ['probe'],
    rate: { count: 1000, intervalMs: 1000, burst: 1000 },
  });
  const port = Number(new URL(alice.address!).port);
  return { alice, bob, grant, port, logger };
}

describe('WtdNode.listen: connection bounds (limits)', function () {
  this.timeout(30_000);
  let n: Awaited<ReturnType<typeof aliceAndBob>> | undefined;
  let conns: Conn[];
  const start = async (limits: Partial<ServerLimits> = {}) => (n = await aliceAndBob(limits));
  beforeEach(() => {
    n = undefined;
    conns = [];
    probeRuns.count = 0;
  });
  afterEach(async () => {
    await closeConns(conns);
    await n?.alice.close();
    await n?.bob.close();
  });

  it('with one address holding 256 silent connections (its 32 kept), an honest signed call succeeds', async () => {
    const t = await start();
    const tries = await Promise.all(Array.from({ length: 256 }, () => connect(t.port, '127.0.0.2')));
    conns.push(...tries);
    // The guard closes each one over the address's share as it opens; wait for all 224 of them.
    let closed = 0;
    await new Promise<void>((resolve) => {
      for (const c of tries) void c.closed.then(() => ++closed === 224 && resolve());
    });
    const remote = await t.bob.connect(t.grant);
    expect(await remote.call('Probe', 'touch', ['hello'])).to.equal('hello');
    expect(t.logger.matching('refused a connection from 127.0.0.2').length).to.be.within(1, 10);
  });

  it('with every connection taken by slow headers from eight addresses, an honest signed call succeeds', async () => {
    const t = await start();
    for (let a = 2; a < 10; a++) {
      const slow = await connectMany(t.port, 32, `127.0.0.${a}`);
      for (const c of slow) c.socket.write('PUT /apply/Probe/touch HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
      conns.push(...slow);
    }
    const remote = await t.bob.connect(t.grant);
    expect(await remote.call('Probe', 'touch', ['hello'])).to.equal('hello');
    // It took the place of the oldest idle connection.
    expect(await conns[0]!.closed).to.equal('');
  });

  it('closes a request whose headers came but not its body after requestTimeoutMs, logging one line without a stack', async () => {
    const t = await start({ headersTimeoutMs: 100, requestTimeoutMs: 200 });
    const stalled = await connect(t.port, '127.0.0.2');
    conns.push(stalled);
    stalled.socket.write(headers('/apply/Probe/touch', 100));
    expect(await stalled.closed).to.match(/^HTTP\/1\.1 408 /);
    await t.logger.until(1);
    expect(t.logger.entries).to.have.length(1);
    expect(t.logger.entries[0]!.message).to.match(
      /^node alice: a request to \/apply\/Probe\/touch from .* was cut off/,
    );
    expect(t.logger.entries[0]!.details).to.deep.equal([]);
    expect(probeRuns.count).to.equal(0);
  });

  it('refuses a limit that is not a positive integer with a TypeError when the node starts', async () => {
    const err = await rejection(
      WtdNode.start({ name: 'x', dataDir: ':memory:', limits: { maxConnectionsPerSource: 0 } }),
    );
    expect(err).to.be.instanceOf(TypeError);
  });

  it('answers a request on a kept-alive connection the guard let in', async () => {
    const t = await start({ maxConnections: 2, maxConnectionsPerSource: 1 });
    const first = await connect(t.port, '127.0.0.2');
    const second = await connect(t.port, '127.0.0.2');
    conns.push(first, second);
    expect(await second.closed).to.equal('');
    first.socket.write(`${headers('/apply/Probe/touch', 5)}hello`);
    expect(await statusLine(first)).to.match(/^HTTP\/1\.1 400 /); // read and refused by the node, not by the guard
  });
});
