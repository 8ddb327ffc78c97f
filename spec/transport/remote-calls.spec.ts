import { expect } from 'chai';
import {
  CallTimeoutError,
  MaybeRanError,
  NodeDownError,
  outcomeOf,
  NotSerializableError,
  RemoteError,
  WireError,
  WtdNode,
  type Pid,
} from '../../lib/index.js';
import { EXECUTIONS_PER_GRANT } from '../../lib/transport/executions.js';
import { WireCodec } from '../../lib/wire/codec.js';
import { newClaims, newMessageId } from '../../lib/wire/claims.js';
import { flush, rejection } from '../fixtures/helpers.js';
import { keyedNode, put, signRaw, probeRuns, withTwoNodes, Probe } from '../fixtures/remote.js';

const plain = new WireCodec();

/** Claims for a call to `path` on `alice`, valid now, with overrides. */
function claimsFor(alice: WtdNode, path: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const nowS = Math.floor(alice.wallClock.now() / 1000);
  return {
    id: newMessageId(),
    iat: nowS,
    exp: nowS + 30,
    aud: alice.id,
    iss: 'caller',
    method: 'PUT',
    path,
    body: plain.encode(['hello']),
    ...overrides,
  };
}

describe('WtdNode: grants and signed remote calls', () => {
  const nodes = withTwoNodes();

  describe('RemoteNode.call(module, fn, args, options)', () => {
    it('calls an exported function and returns its result, plain data intact', async () => {
      const remote = await nodes.bob.connect(nodes.grant);
      const value = { when: new Date('2026-01-01T00:00:00Z'), big: 2n ** 70n, set: new Set([1, 2]), u: undefined };
      expect(await remote.call('Probe', 'touch', [value])).to.deep.equal(value);
      expect(probeRuns.count).to.equal(1);
      const [grant] = nodes.alice.grants();
      expect(grant!.uses).to.equal(1);
    });

    it('a remote exception arrives as RemoteError with no stack', async () => {
      const remote = await nodes.bob.connect(nodes.grant);
      const err = await rejection(remote.call('Probe', 'fail'));
      expect(err).to.be.instanceOf(RemoteError);
      expect(err.code).to.equal('ERR_REMOTE_EXCEPTION');
      expect(err.message).to.equal('probe failed on purpose');
    });

    it('cast runs the function and resolves once accepted', async () => {
      const remote = await nodes.bob.connect(nodes.grant);
      await remote.cast('Probe', 'touch', [1]);
      await nodes.alice.onIdle();
      expect(probeRuns.count).to.equal(1);
    });

    it('behaviour operations: a GenServer exposed with @WtdBehaviour', async () => {
      const remote = await nodes.bob.connect(nodes.grant);
      const echo = remote.genServer('probe', 'echo');
      expect(await echo.call('hi')).to.deep.equal({ echo: 'hi', n: 1 });
      expect(await echo.call('again')).to.deep.equal({ echo: 'again', n: 2 });
      const err = await rejection(remote.genServer('probe', 'nobody').call('hi'));
      expect(err).to.be.instanceOf(WireError);
      expect(err.code).to.equal('ERR_MISSION_NOT_GRANTED');
      expect(err.status).to.equal(403);
    });

    it('behaviour operations: GenEvent, GenFsm and Supervisor exposed with @WtdBehaviour', async () => {
      const remote = await nodes.bob.connect(nodes.grant);
      const room = remote.genEvent('probe', 'room');
      await room.syncNotify('hello');
      await room.notify('world');
      expect(await room.whichHandlers()).to.deep.equal(['Log']);
      expect(await room.call('Log', 'seen')).to.deep.equal(['hello', 'world']);
      const toggle = remote.genFsm('probe', 'toggle');
      expect(await toggle.syncSendEvent('flip')).to.equal('on');
      expect(await toggle.syncSendEvent('flip')).to.equal('off');
      const pool = remote.supervisor('probe', 'pool');
      const worker = (await pool.startChild([5])) as Pid;
      expect(String(worker)).to.match(/^<alice\.\d+\.0>$/); // printed with its node's name
      expect((await pool.countChildren()).active).to.equal(1);
      expect((await pool.whichChildren()).map((c) => c.id)).to.deep.equal([null]);
      // an operation the behaviour does not expose is refused
      const err = await rejection(remote.genServer('probe', 'toggle').call('x'));
      expect([err.status, err.code]).to.deep.equal([403, 'ERR_MISSION_NOT_GRANTED']);
    });

    it('a revocation also stops requests already queued behind running ones', async () => {
      const remote = await nodes.bob.connect(nodes.grant);
      let open!: () => void;
      Probe.gate = new Promise<void>((r) => (open = r));
      const calls = Array.from({ length: EXECUTIONS_PER_GRANT + 1 }, () => remote.call('Probe', 'slow'));
      await Probe.atGate(EXECUTIONS_PER_GRANT);
      nodes.alice.revoke(nodes.grant.kid);
      open();
      const results = await Promise.allSettled(calls);
      const refused = results
        .filter((r) => r.status === 'rejected')
        .map((r) => (r as PromiseRejectedResult).reason.code);
      expect(results.filter((r) => r.status === 'fulfilled').length).to.equal(EXECUTIONS_PER_GRANT);
      expect(refused).to.deep.equal(['ERR_GRANT_REVOKED']);
      expect(probeRuns.count).to.equal(EXECUTIONS_PER_GRANT);
      Probe.gate = Promise.resolve();
    });

    it("the safer way: a grant to the grantee node's own public key", async () => {
      const record = await nodes.alice.grant({ missions: ['probe'], rate: '10/s', to: nodes.bob.publicJwk });
      expect(record.kid).to.be.a('string');
      const remote = await nodes.bob.connect({ address: nodes.alice.address!, nodeKey: nodes.alice.publicJwk });
      expect(await remote.call('Probe', 'touch', ['direct'])).to.equal('direct');
      await rejection(
        nodes.alice.grant({ missions: ['probe'], rate: '10/s', to: { ...nodes.bob.publicJwk, d: 'secret' } }),
      ).then((e: { code: string }) => expect(e.code).to.equal('ERR_BAD_KEY'));
    });

    it('functions in the arguments fail in the caller before anything is sent', async () => {
      const remote = await nodes.bob.connect(nodes.grant);
      const err = await rejection(remote.call('Probe', 'touch', [() => 1]));
      expect(err).to.be.instanceOf(NotSerializableError);
      expect(err.code).to.equal('ERR_NOT_SERIALIZABLE');
      expect(nodes.alice.grants()[0]!.uses).to.equal(0);
    });

    it('a node that never answers is ERR_MAYBE_RAN (it was sent); a stopped one ERR_NODE_DOWN (it did not run)', async () => {
      const { createServer } = await import('node:net');
      const silent = createServer(() => undefined);
      await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
      const port = (silent.address() as { port: number }).port;
      const stuck = await nodes.bob.connect({
        ...nodes.grant,
        node: { ...nodes.grant.node, address: `http://127.0.0.1:${port}` },
      });
      // In a session, what never answers is its first request: the call itself was never sent.
      const unsent = await rejection(stuck.call('Probe', 'touch', [1], { timeout: 200 }));
      expect(unsent).to.be.instanceOf(CallTimeoutError);
      expect(outcomeOf(unsent)).to.equal('not_run');
      // A call that was sent (signed, with encryption off) and never answered may have run.
      const plain = await WtdNode.start({ name: 'plain', dataDir: ':memory:', encryption: false });
      try {
        const sent = await plain.connect({
          ...nodes.grant,
          node: { ...nodes.grant.node, address: `http://127.0.0.1:${port}` },
        });
        const timeout = await rejection(sent.call('Probe', 'touch', [1], { timeout: 200 }));
        expect(timeout).to.be.instanceOf(MaybeRanError);
        expect(timeout.code).to.equal('ERR_MAYBE_RAN');
        expect(outcomeOf(timeout)).to.equal('maybe_ran');
      } finally {
        await plain.close();
      }
      silent.close();
      const remote = await nodes.bob.connect(nodes.grant);
      await nodes.alice.close();
      const down = await rejection(remote.call('Probe', 'touch', [1]));
      expect(down).to.be.instanceOf(NodeDownError);
      expect(down.code).to.equal('ERR_NODE_DOWN');
      expect(outcomeOf(down)).to.equal('not_run');
    });
  });

  describe('pids across nodes', () => {
    it("Bob passes a pid, Alice's function sends to it, Bob's process receives", async () => {
      const remote = await nodes.bob.connect(nodes.grant);
      const got: unknown[] = [];
      let done!: () => void;
      const finished = new Promise<void>((r) => (done = r));
      const inbox = nodes.bob.spawn(async (self) => {
        for (let i = 0; i < 3; i++) got.push(await self.receive());
        done();
      });
      expect(await remote.call('Probe', 'pingBack', [inbox, 3])).to.equal('sent');
      await finished;
      expect(got).to.deep.equal([{ ping: 0 }, { ping: 1 }, { ping: 2 }]);
    });

    it('Alice can hand Bob one of her pids in a result, and Bob can send to it', async () => {
      const remote = await nodes.bob.connect(nodes.grant);
      let got: unknown;
      let done!: () => void;
      const finished = new Promise<void>((r) => (done = r));
      nodes.alice.spawn(
        async (self) => {
          got = await self.receive();
          done();
        },
        { name: 'inbox' },
      );
      const pid = await remote.call<Pid>('Probe', 'mailbox');
      expect(pid.node).to.equal('alice');
      nodes.bob.send(pid, 'hello alice');
      await finished;
      expect(got).to.equal('hello alice');
    });

    it('messages to a handed pid stop once the grant that carried it is revoked', async () => {
      const remote = await nodes.bob.connect(nodes.grant);
      const got: unknown[] = [];
      const inbox = nodes.bob.spawn(async (self) => {
        for (;;) got.push(await self.receive());
      });
      await remote.call('Probe', 'pingBack', [inbox, 1]);
      await nodes.alice.onIdle();
      await flush();
      expect(got).to.have.length(1);
      nodes.alice.revoke(nodes.grant.kid);
      // Alice's code still holds the proxy pid; sending to it now goes nowhere.
      nodes.alice.send(Probe.lastPid!, 'after revoke');
      await nodes.alice.onIdle(); // anything sent would have been accepted by Bob by now
      await flush();
      expect(got).to.deep.equal([{ ping: 0 }]);
    });

    it('trust is not reciprocal: Alice has no right to call Bob', async () => {
      const path = '/apply/Probe/touch';
      // Alice signs with her own node key; Bob has granted her nothing.
      bobLoadsProbe(nodes.bob);
      const jws = await nodes.signAsAlice('reply', claimsFor(nodes.bob, path) as never);
      const res = await put(nodes.bob.address + path, jws);
      expect(res.status).to.equal(401);
      expect(['ERR_BAD_JWS', 'ERR_UNKNOWN_KEY']).to.include(res.code);
      const forged = await signRaw(
        nodes.grant.privateJwk,
        { typ: 'wtd-call+jws', kid: nodes.grant.kid },
        claimsFor(nodes.bob, path),
      );
      const res2 = await put(nodes.bob.address + path, forged);
      expect([res2.status, res2.code]).to.deep.equal([401, 'ERR_UNKNOWN_KEY']);
      expect(probeRuns.count).to.equal(0);
    });
  });
});

/** Bob's node offers Probe too, to show that Alice still cannot call it. */
function bobLoadsProbe(bob: WtdNode): void {
  if (!bob.missions.modules().includes('Probe')) bob.load(Probe);
}

describe('pids across nodes: hand-made pid messages (signed, as on nodes with encryption off)', () => {
  const nodes = withTwoNodes({ encryption: false });

  it('a pid message with a token that was not handed to the sender is refused', async () => {
    const remote = await nodes.bob.connect(nodes.grant);
    const inbox = nodes.bob.spawn(async (self) => {
      await self.receive();
    });
    await remote.call('Probe', 'pingBack', [inbox, 0]);
    // Alice is a known peer of Bob's, but this token was never handed to her.
    const path = `/pid/${inbox.id}`;
    const claims = newClaims<'pid'>(nodes.alice.wallClock, {
      aud: nodes.bob.id,
      iss: nodes.alice.id,
      method: 'PUT',
      path,
      body: { token: 'forged-token', msg: plain.encode('hi') },
    });
    const res = await put(nodes.bob.address + path, await nodes.signAsAlice('pid', claims));
    expect([res.status, res.code]).to.deep.equal([403, 'ERR_PID_NOT_GRANTED']);
    expect(nodes.bob.processInfo(inbox)!.messageQueueLength).to.equal(0);
  });
  it('a pid claiming to be local to the receiver is refused', async () => {
    const path = '/apply/Probe/touch';
    const body = {
      json: { node: nodes.alice.id, id: 1, token: 'x' },
      meta: { values: [['custom', 'wtd.pid']], v: 1 },
    };
    const jws = await signRaw(
      nodes.grant.privateJwk,
      { typ: 'wtd-call+jws', kid: nodes.grant.kid },
      claimsFor(nodes.alice, path, {
        body: { json: [body.json], meta: { values: { 0: [['custom', 'wtd.pid']] }, v: 1 } },
      }),
    );
    const res = await put(nodes.alice.address + path, jws);
    expect([res.status, res.code]).to.deep.equal([400, 'ERR_BAD_PID']);
    expect(probeRuns.count).to.equal(0);
  });
});

describe('WtdNode.grant / connect / listen: misuse gets clear errors', () => {
  it('refuses bad missions, rates, keys, a grant file without an address, and listening twice', async () => {
    const alice = await WtdNode.start({ name: 'alice', dataDir: ':memory:' });
    const bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:' });
    try {
      expect(await rejection(alice.grant({ missions: [], rate: '1/s' }))).to.be.instanceOf(TypeError);
      expect(await rejection(alice.grant({ missions: ['Not Valid'], rate: '1/s' }))).to.be.instanceOf(TypeError);
      expect(await rejection(alice.grant({ missions: ['ok'], rate: 'fast' }))).to.be.instanceOf(RangeError);
      expect((await rejection(alice.grant({ missions: ['ok'], rate: '1/s', to: { kty: 'RSA' } }))).code).to.equal(
        'ERR_BAD_KEY',
      );
      const offline = await alice.grant({ missions: ['ok'], rate: '1/s' });
      expect((await rejection(bob.connect(offline))).code).to.equal('ERR_NO_ADDRESS');
      await alice.listen({ port: 0 });
      expect((await rejection(alice.listen({ port: 0 }))).code).to.equal('ERR_ALREADY_LISTENING');
      expect(await rejection(WtdNode.start({} as never))).to.be.instanceOf(TypeError);
    } finally {
      await alice.close();
      await bob.close();
    }
  });
});

describe('RemoteNode: replies are checked', () => {
  it('refuses a reply signed by another key, or answering another request (ERR_BAD_REPLY)', async () => {
    const { createServer } = await import('node:http');
    const alice = await keyedNode({ name: 'alice' });
    const mallory = await keyedNode({ name: 'mallory' });
    // Signed replies, as a node with encryption off reads them (sealed ones: spec/transport/sessions).
    const bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:', encryption: false });
    // A stand-in for Alice's address that answers with whatever `answer` makes.
    let answer: (requestJws: string) => Promise<string> = async () => '';
    const fake = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        void answer(body).then((jws) => {
          res.writeHead(200, { 'content-type': 'application/jose' });
          res.end(jws);
        });
      });
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', () => r()));
    try {
      await alice.node.listen({ port: 0 });
      const grant = await alice.node.grant({ missions: ['probe'], rate: '10/s' });
      const address = `http://127.0.0.1:${(fake.address() as { port: number }).port}`;
      const remote = await bob.connect({ ...grant, node: { ...grant.node, address } });
      const claimsOf = (jws: string) =>
        JSON.parse(Buffer.from(jws.split('.')[1]!, 'base64url').toString()) as { id: string; iss: string };
      const body = { ok: new WireCodec().encode('forged') };
      const reply = (signer: typeof alice, id: string, over: { iat?: number; exp?: number } = {}) =>
        signer.signAs('reply', {
          ...newClaims<'reply'>(bob.wallClock, { id, aud: bob.id, iss: alice.node.id, body }),
          ...over,
        });
      // Signed by another node's key.
      answer = async (jws) => reply(mallory, claimsOf(jws).id);
      const wrongKey = await rejection(remote.call('Probe', 'touch', [1]));
      expect([wrongKey.code, wrongKey.status]).to.deep.equal(['ERR_BAD_REPLY', 502]);
      // Signed by Alice, but for another request id.
      answer = async () => reply(alice, newMessageId());
      const wrongId = await rejection(remote.call('Probe', 'touch', [1]));
      expect([wrongId.code, wrongId.status]).to.deep.equal(['ERR_BAD_REPLY', 502]);
      // Signed by Alice for this request, but long expired: a reply is dated too.
      answer = async (jws) => reply(alice, claimsOf(jws).id, { iat: 1, exp: 31 });
      const stale = await rejection(remote.call('Probe', 'touch', [1]));
      expect([stale.code, stale.status]).to.deep.equal(['ERR_STALE', 401]);
      // Signed by Alice for this request: accepted (the control case).
      answer = async (jws) => reply(alice, claimsOf(jws).id);
      expect(await remote.call('Probe', 'touch', [1])).to.equal('forged');
    } finally {
      fake.close();
      await alice.node.close();
      await mallory.node.close();
      await bob.close();
    }
  });
});
