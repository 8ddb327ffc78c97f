import { expect } from 'chai';
import { ManualClock, WtdProxy, type ConnectionLimits } from '../../lib/index.js';
import { rejection } from '../fixtures/helpers.js';
import { RawClient } from '../fixtures/proxy.js';
import { CapturingLogger, closeConns, connect, connectMany, headers, type Conn } from '../fixtures/sockets.js';

describe('WtdProxy.start({ connections }): connection bounds', function () {
  this.timeout(30_000);
  let proxy: WtdProxy | undefined;
  let logger: CapturingLogger;
  let clock: ManualClock;
  let conns: Conn[];
  let port: number;

  /** A proxy on a manual clock (so a held poll is held until the spec moves time), logging to `logger`. */
  async function start(connections: Partial<ConnectionLimits>): Promise<WtdProxy> {
    proxy = await WtdProxy.start({ dataDir: ':memory:', port: 0, logger, wallClock: clock, connections });
    port = proxy.port;
    return proxy;
  }

  /** Sends a signed poll of `client` on a raw connection from `localAddress`, and waits until the proxy holds it. */
  async function heldPoll(client: RawClient, localAddress: string): Promise<Conn> {
    const waiting = proxy!.status().waitingPolls;
    const conn = await connect(port, localAddress);
    conns.push(conn);
    const path = `/nodes/${client.id}/poll`;
    const jws = await client.jws(path, {});
    conn.socket.write(headers(path, Buffer.byteLength(jws)) + jws);
    await proxy!.until((s) => s.waitingPolls === waiting + 1);
    return conn;
  }

  beforeEach(() => {
    proxy = undefined;
    logger = new CapturingLogger();
    clock = new ManualClock(Date.now());
    conns = [];
  });
  afterEach(async () => {
    await closeConns(conns);
    await proxy?.close();
  });

  it('cuts a request whose headers came but not its body after requestTimeoutMs, logging one line without a stack', async () => {
    await start({ headersTimeoutMs: 100, requestTimeoutMs: 200 });
    const stalled = await connect(port, '127.0.0.2');
    conns.push(stalled);
    stalled.socket.write(headers('/register', 100));
    expect(await stalled.closed).to.match(/^HTTP\/1\.1 408 /);
    await logger.until(1);
    expect(logger.entries).to.have.length(1);
    expect(logger.entries[0]!.message).to.match(/^proxy: a request to \/register from .* was cut off: aborted$/);
    expect(logger.entries[0]!.details).to.deep.equal([]);
  });

  it('bounds the polls one address holds, never closes a held poll to make room, and still serves other addresses', async () => {
    const p = await start({ maxConnections: 5, maxConnectionsPerSource: 3 });
    const clients: RawClient[] = [];
    for (let i = 0; i < 5; i++) clients.push(await RawClient.register(p, `n${i}@example.org`, clock));
    for (const c of clients.slice(0, 3)) await heldPoll(c, '127.0.0.2');
    const fourth = await connect(port, '127.0.0.2');
    conns.push(fourth);
    expect(await fourth.closed).to.equal(''); // the address holds its share
    await heldPoll(clients[3]!, '127.0.0.1');
    const silent = await connect(port, '127.0.0.3');
    conns.push(silent);
    // All five are taken; the newcomer's poll takes the silent connection's place, not a held poll's.
    await heldPoll(clients[4]!, '127.0.0.4');
    expect(await silent.closed).to.equal('');
    const refused = await connect(port, '127.0.0.5');
    conns.push(refused);
    expect(await refused.closed).to.equal(''); // every connection holds a poll
    expect(p.status().waitingPolls).to.equal(5);
    expect(logger.lines).to.deep.equal([
      'proxy: refused a connection from 127.0.0.2: it has 3 open, the most one address may',
      'proxy: refused a connection from 127.0.0.5: all 5 connections are being answered',
    ]);
  });

  it('logs at most 10 refused connections a minute, then one line with how many it left out', async () => {
    await start({ maxConnectionsPerSource: 1 });
    conns.push(await connect(port, '127.0.0.2'));
    const refused = await connectMany(port, 30, '127.0.0.2');
    conns.push(...refused);
    await Promise.all(refused.map((c) => c.closed));
    expect(logger.lines).to.have.length(10);
    expect(new Set(logger.lines)).to.deep.equal(
      new Set(['proxy: refused a connection from 127.0.0.2: it has 1 open, the most one address may']),
    );
    clock.advance(60_000);
    expect(logger.lines.slice(10)).to.deep.equal(['… 20 similar lines suppressed (connection)']);
  });

  it('refuses connection limits that are not positive integers with a TypeError', async () => {
    const err = await rejection(WtdProxy.start({ dataDir: ':memory:', port: 0, connections: { requestTimeoutMs: 0 } }));
    expect(err).to.be.instanceOf(TypeError);
  });
});
