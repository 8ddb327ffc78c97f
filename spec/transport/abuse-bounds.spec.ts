import { createServer, request, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import {
  GenEvent,
  GenEventHandler,
  GenServer,
  ok,
  noreply,
  RateLimitedError,
  SqliteGrantStore,
  WireError,
  WtdBehaviour,
  WtdNode,
  type GrantFile,
} from '../../lib/index.js';
import { importPrivate, shortId } from '../../lib/security/keys.js';
import { newClaims, type ReplyClaims } from '../../lib/wire/claims.js';
import { WireCodec } from '../../lib/wire/codec.js';
import { sign } from '../../lib/wire/envelope.js';
import { Greeter, start as startGreeter, Visitors } from '../../samples/greeter.js';
import { rejection } from '../fixtures/helpers.js';
import { Executions, EXECUTIONS_PER_GRANT, WAITING_PER_GRANT } from '../../lib/transport/executions.js';
import { cluster, closeAll, RawClient, type Cluster } from '../fixtures/proxy.js';
import { keyedNode, probeRuns, Probe, put, withTwoNodes } from '../fixtures/remote.js';

const plain = new WireCodec();

/** A pid of a caller named `node`, as it travels in arguments (a billet-doux). */
function billet(node: string, id: number, token: string): { json: unknown; meta: unknown } {
  return { json: [{ node, id, token }, 0], meta: { values: { 0: [['custom', 'wtd.pid']] }, v: 1 } };
}

/** A GenServer whose casts wait on a gate, so that its mailbox fills. */
@WtdBehaviour('probe')
class Stuck extends GenServer<null> {
  static gate: Promise<void> = new Promise(() => undefined);
  override async handleCast() {
    await Stuck.gate;
    return noreply(null);
  }
}

/** An event handler that takes events but no calls. */
class Quiet extends GenEventHandler<null> {
  override init() {
    return ok(null);
  }
}

/** A signer of hand-made requests with a grant file's key, as the node `iss`. */
async function grantSigner(grant: GrantFile) {
  const key = (await importPrivate(grant.privateJwk)).privateKey;
  return (kind: 'call' | 'pid', claims: object) => sign(kind, claims as never, key, grant.kid);
}

describe('What a grantee can make a node hold, and whom it can make it call', () => {
  const nodes = withTwoNodes({ encryption: false });

  /** Signs and PUTs a call to Alice under Bob's grant, from node `iss`. */
  async function callAlice(path: string, body: unknown, extra: Record<string, unknown> = {}, iss = 'mallory') {
    const signAs = await grantSigner(nodes.grant);
    const claims = newClaims<'call'>(nodes.clock, {
      aud: nodes.alice.id,
      iss,
      method: 'PUT',
      path,
      body: body as never,
    });
    return put(nodes.alice.address + path, await signAs('call', { ...claims, ...extra }));
  }

  /** Polls Alice's inbox for Bob's grant, from node `iss`; returns the messages of the signed answer. */
  async function pollInbox(ack: number, iss = 'mallory') {
    const res = await callAlice('/inbox', { ack }, {}, iss);
    expect(res.status, res.text).to.equal(200);
    const claims = JSON.parse(Buffer.from(res.text.split('.')[1]!, 'base64url').toString()) as ReplyClaims;
    return (claims.body as { inbox: { seq: number; id: number; token: string }[] }).inbox;
  }

  describe('messages to a caller’s pids', () => {
    let trap: Server;
    let connections: number;
    beforeEach(async () => {
      connections = 0;
      trap = createServer((_req, res) => res.end());
      trap.on('connection', () => connections++);
      await new Promise<void>((resolve) => trap.listen(0, '127.0.0.3', resolve));
    });
    afterEach(async () => {
      trap.closeAllConnections();
      await new Promise<void>((resolve) => trap.close(() => resolve()));
    });

    it('never go to an address the request named: they wait in the grant’s outbox for the caller’s poll', async () => {
      const { port } = trap.address() as AddressInfo;
      const res = await callAlice('/apply/Probe/pingBack', billet('mallory', 7, 'tok'), {
        addr: `http://127.0.0.3:${port}/internal?q=`,
      });
      expect(res.status, res.text).to.equal(200);
      // pingBack(pid, 0) sent nothing; now three.
      const three = await callAlice('/apply/Probe/pingBack', {
        json: [{ node: 'mallory', id: 7, token: 'tok' }, 3],
        meta: { values: { 0: [['custom', 'wtd.pid']] }, v: 1 },
      });
      expect(three.status).to.equal(200);
      expect(nodes.alice.outboxStats()[nodes.grant.kid]).to.include({ queued: 3, dropped: 0 });
      const first = await pollInbox(0);
      expect(first.map((m) => [m.seq, m.id, m.token])).to.deep.equal([
        [1, 7, 'tok'],
        [2, 7, 'tok'],
        [3, 7, 'tok'],
      ]);
      // Not acknowledged yet: still held. Acknowledged by the next poll: gone.
      expect(nodes.alice.outboxStats()[nodes.grant.kid]!.queued).to.equal(3);
      const next = pollInbox(3);
      await nodes.alice.onIdle();
      expect(nodes.alice.outboxStats()[nodes.grant.kid]).to.include({ queued: 0, sent: 3 });
      nodes.clock.advance(20_000); // the held poll ends, empty
      expect(await next).to.deep.equal([]);
      expect(connections).to.equal(0);
    });

    it('an inbox poll without a whole ack >= 0 is refused with ERR_BAD_ARGUMENTS', async () => {
      for (const body of [{}, { ack: -1 }, { ack: 1.5 }, { ack: '3' }, null]) {
        const res = await callAlice('/inbox', body);
        expect([res.status, res.code]).to.deep.equal([400, 'ERR_BAD_ARGUMENTS']);
      }
    });

    it('an outbox over its bound drops what does not fit, and counts it', async () => {
      await nodes.alice.close();
      const keyed = await keyedNode({
        name: 'alice',
        wallClock: nodes.clock,
        outbox: { maxMessages: 5 },
        encryption: false,
      });
      nodes.alice = keyed.node;
      nodes.alice.load(Probe);
      Probe.node = nodes.alice;
      await nodes.alice.listen({ port: 0 });
      nodes.grant = (await nodes.alice.grant({ missions: ['probe'], rate: '1000/s' })) as GrantFile;
      const res = await callAlice('/apply/Probe/pingBack', {
        json: [{ node: 'mallory', id: 7, token: 'tok' }, 8],
        meta: { values: { 0: [['custom', 'wtd.pid']] }, v: 1 },
      });
      expect(res.status, res.text).to.equal(200);
      expect(nodes.alice.outboxStats()[nodes.grant.kid]).to.include({ queued: 5, dropped: 3 });
    });

    it('leave no faster than the grant’s message rate allows', async () => {
      nodes.grant = (await nodes.alice.grant({
        missions: ['probe'],
        rate: '1000/s',
        messageRate: { count: 1, intervalMs: 1000, burst: 2 },
      })) as GrantFile;
      await callAlice('/apply/Probe/pingBack', {
        json: [{ node: 'mallory', id: 7, token: 'tok' }, 3],
        meta: { values: { 0: [['custom', 'wtd.pid']] }, v: 1 },
      });
      // Two tokens: two messages leave, the third waits for the next.
      expect((await pollInbox(0)).map((m) => m.seq)).to.deep.equal([1, 2]);
      expect(nodes.alice.outboxStats()[nodes.grant.kid]!.queued).to.equal(3);
      nodes.clock.advance(1000);
      expect((await pollInbox(2)).map((m) => m.seq)).to.deep.equal([3]);
    });

    it('a poll that asks again for what it was sent spends the grant’s rate: ERR_RATE_LIMITED', async () => {
      nodes.grant = (await nodes.alice.grant({
        missions: ['probe'],
        rate: { count: 1, intervalMs: 1000, burst: 3 },
        messageRate: { count: 1000, intervalMs: 1000, burst: 1000 },
      })) as GrantFile;
      await callAlice('/apply/Probe/pingBack', {
        json: [{ node: 'mallory', id: 7, token: 'tok' }, 2],
        meta: { values: { 0: [['custom', 'wtd.pid']] }, v: 1 },
      }); // one token of three
      expect((await pollInbox(0)).map((m) => m.seq)).to.deep.equal([1, 2]); // free: nothing was sent before
      expect((await pollInbox(0)).map((m) => m.seq)).to.deep.equal([1, 2]); // again: a token
      expect((await pollInbox(1)).map((m) => m.seq)).to.deep.equal([2]); // again: the last token
      const over = await callAlice('/inbox', { ack: 1 });
      expect([over.status, over.code]).to.deep.equal([429, 'ERR_RATE_LIMITED']);
      // Acknowledging all of it is free again (and is held: nothing is left).
      const held = pollInbox(2);
      await nodes.alice.onIdle();
      nodes.clock.advance(20_000);
      expect(await held).to.deep.equal([]);
    });

    it('Bob’s node polls for them when it handed a pid to a node it called directly', async () => {
      const remote = await nodes.bob.connect(nodes.grant);
      let done!: (got: unknown[]) => void;
      const finished = new Promise<unknown[]>((r) => (done = r));
      const inbox = nodes.bob.spawn(async (self) => {
        const got: unknown[] = [];
        for (let i = 0; i < 3; i++) got.push(await self.receive());
        done(got);
      });
      expect(await remote.call('Probe', 'pingBack', [inbox, 3])).to.equal('sent');
      expect(await finished).to.deep.equal([{ ping: 0 }, { ping: 1 }, { ping: 2 }]);
      expect(connections).to.equal(0);
    });
  });

  describe('pid messages from a grantee', () => {
    /** Gets Alice's `inbox` pid handed to Bob's grant, with its token, from a hand-made call. */
    async function handedPid(): Promise<{ id: number; token: string }> {
      const res = await callAlice('/apply/Probe/mailbox', plain.encode([]));
      const claims = JSON.parse(Buffer.from(res.text.split('.')[1]!, 'base64url').toString()) as ReplyClaims;
      return (claims.body as { ok: { json: { id: number; token: string } } }).ok.json;
    }

    async function sendPid(pid: { id: number; token: string }, msg: unknown, iss = 'mallory') {
      const signAs = await grantSigner(nodes.grant);
      const path = `/pid/${pid.id}`;
      const claims = newClaims<'pid'>(nodes.clock, {
        aud: nodes.alice.id,
        iss,
        method: 'PUT',
        path,
        body: { token: pid.token, msg: plain.encode(msg) },
      });
      return put(nodes.alice.address + path, await signAs('pid', claims));
    }

    it('spend the grant’s rate: over it they are refused with ERR_RATE_LIMITED before reaching the mailbox', async () => {
      nodes.grant = (await nodes.alice.grant({
        missions: ['probe'],
        rate: { count: 1, intervalMs: 1000, burst: 3 },
      })) as GrantFile;
      const inbox = nodes.alice.spawn(() => new Promise(() => undefined), { name: 'inbox' });
      const pid = await handedPid(); // one token
      expect((await sendPid(pid, 1)).status).to.equal(204);
      expect((await sendPid(pid, 2)).status).to.equal(204);
      const over = await sendPid(pid, 3);
      expect([over.status, over.code]).to.deep.equal([429, 'ERR_RATE_LIMITED']);
      expect(nodes.alice.processInfo(inbox)!.messageQueueLength).to.equal(2);
      nodes.clock.advance(1000);
      expect((await sendPid(pid, 4)).status).to.equal(204);
    });

    it('a message rate of the grant’s own is spent instead of its call rate', async () => {
      nodes.grant = (await nodes.alice.grant({
        missions: ['probe'],
        rate: { count: 1, intervalMs: 1000, burst: 2 },
        messageRate: { count: 1, intervalMs: 1000, burst: 1 },
      })) as GrantFile;
      nodes.alice.spawn(() => new Promise(() => undefined), { name: 'inbox' });
      const pid = await handedPid();
      expect((await sendPid(pid, 1)).status).to.equal(204);
      expect((await sendPid(pid, 2)).code).to.equal('ERR_RATE_LIMITED');
      // The call rate still has its second token.
      expect((await callAlice('/apply/Probe/touch', plain.encode([1]))).status).to.equal(200);
    });

    it('to a full mailbox are refused with ERR_MAILBOX_FULL and never queued', async () => {
      const inbox = nodes.alice.spawn(() => new Promise(() => undefined), { name: 'inbox', maxMailbox: 2 });
      const pid = await handedPid();
      expect((await sendPid(pid, 1)).status).to.equal(204);
      expect((await sendPid(pid, 2)).status).to.equal(204);
      const full = await sendPid(pid, 3);
      expect([full.status, full.code]).to.deep.equal([503, 'ERR_MAILBOX_FULL']);
      expect(nodes.alice.processInfo(inbox)!.messageQueueLength).to.equal(2);
      // Local sends are never refused, as in Erlang.
      nodes.alice.send(inbox, 'local');
      expect(nodes.alice.processInfo(inbox)!.messageQueueLength).to.equal(3);
    });

    it('a behaviour whose mailbox is full refuses remote casts with ERR_MAILBOX_FULL before dispatch', async () => {
      nodes.alice.load(Stuck);
      const stuck = await GenServer.start(nodes.alice, new Stuck(), null, { name: 'stuck', maxMailbox: 2 });
      const remote = await nodes.bob.connect(nodes.grant);
      const server = remote.genServer('probe', 'stuck');
      await server.cast('first'); // taken, and waits on the gate
      for (let i = 0; i < 2; i++) nodes.alice.send(stuck, { local: i });
      const err = await rejection(server.cast('one too many'));
      expect(err).to.be.instanceOf(WireError);
      expect(err.code).to.equal('ERR_MAILBOX_FULL');
    });

    it('a remote call to an event handler with no handleCall of its own is refused, and the handler stays', async () => {
      await GenEvent.addHandler({ node: nodes.alice, name: 'room' }, new Quiet());
      const room = (await nodes.bob.connect(nodes.grant)).genEvent('probe', 'room');
      const err = await rejection(room.call('Quiet', 'hello'));
      expect(err.code).to.equal('ERR_NOT_SUPPORTED');
      expect(await room.whichHandlers()).to.include('Quiet');
      expect(await room.call('Log', 'seen?')).to.deep.equal([]);
    });

    it('spawn refuses a maxMailbox that is not a whole number >= 1', () => {
      expect(() => nodes.alice.spawn(async () => undefined, { maxMailbox: 0 })).to.throw(RangeError);
    });
  });

  describe('the issuer of a request is bound', () => {
    it('an issued grant file is bound to the first node that uses it: another gets ERR_WRONG_ISSUER', async () => {
      const first = await nodes.bob.connect(nodes.grant);
      expect(await first.call('Probe', 'touch', [1])).to.equal(1);
      const carol = await WtdNode.start({ name: 'carol', dataDir: ':memory:' });
      try {
        const second = await carol.connect(nodes.grant);
        const err = await rejection(second.call('Probe', 'touch', [2]));
        expect(err).to.be.instanceOf(WireError);
        expect(err.code).to.equal('ERR_WRONG_ISSUER');
        expect(probeRuns.count).to.equal(1);
        // Bob's node still can.
        expect(await first.call('Probe', 'touch', [3])).to.equal(3);
      } finally {
        await carol.close();
      }
    });

    it('a grant to a node’s key takes requests from that node only', async () => {
      const grantee = await keyedNode({ name: 'grantee' });
      try {
        await nodes.alice.grant({ missions: ['probe'], rate: '10/s', to: grantee.node.publicJwk });
        const path = '/apply/Probe/touch';
        const claims = newClaims<'call'>(nodes.clock, {
          aud: nodes.alice.id,
          iss: 'someone-else',
          method: 'PUT',
          path,
          body: plain.encode([1]),
        });
        const res = await put(nodes.alice.address + path, await grantee.signAs('call', claims));
        expect([res.status, res.code]).to.deep.equal([403, 'ERR_WRONG_ISSUER']);
        expect(probeRuns.count).to.equal(0);
        const honest = await grantee.signAs('call', { ...claims, id: 'x'.repeat(22), iss: grantee.node.id });
        expect(shortId(grantee.keys.thumbprint)).to.equal(grantee.node.id);
        expect((await put(nodes.alice.address + path, honest)).status).to.equal(200);
      } finally {
        await grantee.node.close();
      }
    });

    it('a pid message must come from the node its key is bound to', async () => {
      const signAs = await grantSigner(nodes.grant);
      await callAlice('/apply/Probe/touch', plain.encode([1]), {}, 'mallory');
      nodes.alice.spawn(() => new Promise(() => undefined), { name: 'inbox' });
      const res = await callAlice('/apply/Probe/mailbox', plain.encode([]), {}, 'mallory');
      const reply = JSON.parse(Buffer.from(res.text.split('.')[1]!, 'base64url').toString()) as ReplyClaims;
      const pid = (reply.body as { ok: { json: { id: number; token: string } } }).ok.json;
      const path = `/pid/${pid.id}`;
      const claims = newClaims<'pid'>(nodes.clock, {
        aud: nodes.alice.id,
        iss: 'carol',
        method: 'PUT',
        path,
        body: { token: pid.token, msg: plain.encode('hi') },
      });
      const sent = await put(nodes.alice.address + path, await signAs('pid', claims));
      expect([sent.status, sent.code]).to.deep.equal([403, 'ERR_WRONG_ISSUER']);
    });
  });
});

/** PUTs garbage to `url` from `localAddress`: a request the node refuses. */
function refusedFrom(url: string, localAddress: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'PUT', localAddress, headers: { 'content-type': 'application/jose' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end('not.a.jws');
  });
}

describe('Executions: what one grant may have running and waiting', () => {
  it('past its waiting bound a grant is full, and more work is refused with ERR_RATE_LIMITED', async () => {
    const executions = new Executions();
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const work = Array.from({ length: EXECUTIONS_PER_GRANT + WAITING_PER_GRANT }, () =>
      executions.run('g', () => gate),
    );
    expect(executions.full('g')).to.equal(true);
    expect(executions.full('other')).to.equal(false);
    const err = await rejection(executions.run('g', () => Promise.resolve()));
    expect(err).to.be.instanceOf(RateLimitedError);
    expect(err.code).to.equal('ERR_RATE_LIMITED');
    open();
    await Promise.all(work);
    expect(executions.full('g')).to.equal(false);
  });
});

describe('samples/greeter.ts, which beginners copy, holds against its grantees', () => {
  it('no request a grantee sends to Visitors makes it throw, so its supervisor stays up', async () => {
    const alice = await WtdNode.start({ name: 'alice', dataDir: ':memory:' });
    const bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:' });
    try {
      alice.load(Greeter).load(Visitors);
      await startGreeter(alice);
      await alice.listen({ port: 0 });
      const grant = (await alice.grant({ missions: ['greetings'], rate: '10/s' })) as GrantFile;
      const visitors = (await bob.connect(grant)).genServer('greetings', 'visitors');
      const first = alice.whereis('visitors');
      expect(await visitors.call('visit')).to.equal(1);
      for (const request of ['crash', 'crash', { crash: true }, null]) {
        expect(await visitors.call(request)).to.equal(1);
      }
      expect(alice.whereis('visitors')).to.equal(first);
      expect(alice.whereis('greeter_sup')).to.not.equal(undefined);
    } finally {
      await bob.close();
      await alice.close();
    }
  });
});

describe('SqliteGrantStore: a store written before grants bound their issuer', () => {
  it('opens, reads its grants with no issuer, and binds one on first use', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wtd-old-store-'));
    try {
      const old = new Database(join(dir, 'wtd.db'));
      old.exec(`CREATE TABLE grants (
          kid TEXT PRIMARY KEY, label TEXT NOT NULL, missions TEXT NOT NULL, public_jwk TEXT NOT NULL,
          rate TEXT NOT NULL, expires_at INTEGER, created_at INTEGER NOT NULL, revoked_at INTEGER,
          uses INTEGER NOT NULL DEFAULT 0, last_used_at INTEGER);
        INSERT INTO grants (kid, label, missions, public_jwk, rate, created_at)
          VALUES ('k', '', '["m"]', '{}', '{"count":1,"intervalMs":1000,"burst":1}', 0);`);
      old.close();
      const store = new SqliteGrantStore(dir);
      try {
        expect(store.getGrant('k')).to.include({ iss: null, messageRate: null });
        expect(store.bindIssuer('k', 'bob')).to.equal('bob');
        expect(store.bindIssuer('k', 'carol')).to.equal('bob');
      } finally {
        store.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('The refusal log keeps refusals per source', () => {
  it('a stranger refused over and over does not flush the refusals of others out of the observer', async () => {
    const alice = await WtdNode.start({ name: 'alice', dataDir: ':memory:' });
    try {
      const { address } = await alice.listen({ port: 0, host: '127.0.0.1' });
      expect(await refusedFrom(`${address}/apply/Probe/honest`, '127.0.0.1')).to.equal(400);
      for (let i = 0; i < 150; i++) await refusedFrom(`${address}/apply/Probe/flood${i}`, '127.0.0.2');
      const refusals = alice.recentRefusals();
      expect(refusals.filter((r) => r.source === '127.0.0.1').map((r) => r.path)).to.deep.equal([
        '/apply/Probe/honest',
      ]);
      const flood = refusals.filter((r) => r.source === '127.0.0.2');
      expect(flood).to.have.length(20);
      expect(flood.at(-1)!.path).to.equal('/apply/Probe/flood149');
      expect(flood[0]!.code).to.equal('ERR_BAD_JWS');
      // What is kept of a path is short: a sender cannot make the log hold its megabytes.
      expect(await refusedFrom(`${address}/apply/Probe/${'x'.repeat(5000)}`, '127.0.0.3')).to.equal(400);
      const long = alice.recentRefusals().find((r) => r.source === '127.0.0.3')!;
      expect(long.path.length).to.be.below(250);
    } finally {
      await alice.close();
    }
  });
});

describe('Through the proxy, a request’s issuer is the sender the proxy authenticated', () => {
  /** Relays `path` with `body` to Alice under Bob's grant, from a raw registration, claiming node `iss`; its answer. */
  async function relayed(c: Cluster, raw: RawClient, path: string, body: unknown, iss: string) {
    const signAs = await grantSigner(c.grant);
    const claims = newClaims<'call'>(c.alice.wallClock, {
      aud: c.alice.id,
      iss,
      method: 'PUT',
      path,
      body: body as never,
    });
    const jws = await signAs('call', claims);
    const sent = await raw.poll({ messages: [{ id: 'r1', kind: 'request', to: c.alice.id, path, jws }] });
    expect(sent.json.results).to.deep.equal([{ id: 'r1' }]);
    let response: { status: number; text: string } | undefined;
    for (let i = 0; i < 50 && response === undefined; i++) {
      const got = await raw.poll({ ack: [] });
      response = got.json.messages.find((m: { kind: string; re?: string }) => m.kind === 'response' && m.re === 'r1');
    }
    return { status: response?.status, code: (JSON.parse(response!.text) as { error?: { code: string } }).error?.code };
  }

  it('a relayed call under Bob’s grant claiming to come from Carol is refused with ERR_WRONG_ISSUER', async () => {
    const c = await cluster({ pollHoldMs: 200 }, { encryption: false });
    probeRuns.count = 0;
    try {
      const raw = await RawClient.register(c.proxy, 'mallory@example.org');
      const answer = await relayed(c, raw, '/apply/Probe/pingBack', billet(c.carol.id, 1, 'tok'), c.carol.id);
      expect(answer).to.deep.equal({ status: 403, code: 'ERR_WRONG_ISSUER' });
      expect(probeRuns.count).to.equal(0);
      expect(c.proxy.status().nodes.find((n) => n.id === c.carol.id)!.queued).to.equal(0);
    } finally {
      await closeAll(c.alice, c.bob, c.carol, c.proxy);
    }
  });

  it('a relayed inbox poll is refused with ERR_BAD_REQUEST: through a proxy, messages come back through it', async () => {
    const c = await cluster({ pollHoldMs: 200 }, { encryption: false });
    try {
      const raw = await RawClient.register(c.proxy, 'mallory@example.org');
      expect(await relayed(c, raw, '/inbox', { ack: 0 }, raw.id)).to.deep.equal({
        status: 400,
        code: 'ERR_BAD_REQUEST',
      });
    } finally {
      await closeAll(c.alice, c.bob, c.carol, c.proxy);
    }
  });
});
