import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { WtdNode } from '../../lib/index.js';
import { WireCodec } from '../../lib/wire/codec.js';
import { newMessageId } from '../../lib/wire/claims.js';
import { Probe, probeRuns, put, signRaw } from '../fixtures/remote.js';
import { rejection } from '../fixtures/helpers.js';

describe('WtdNode.start({ dataDir }): what survives a restart', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'wtd-spec-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  async function alice(options: { encryption?: boolean } = {}): Promise<WtdNode> {
    const node = await WtdNode.start({ name: 'alice', dataDir: dir, ...options });
    node.load(Probe);
    await node.listen({ port: 0 });
    return node;
  }

  it('keeps its identity in an owner-only file', async () => {
    const first = await alice();
    const id = first.id;
    await first.close();
    expect(statSync(join(dir, 'wtd.db')).mode & 0o777).to.equal(0o600);
    const again = await alice();
    expect(again.id).to.equal(id);
    await again.close();
  });

  it('a revoked grant stays revoked, and an expired one expired, after a restart', async () => {
    const first = await alice();
    const revoked = await first.grant({ missions: ['probe'], rate: '10/s' });
    first.revoke(revoked.kid);
    await first.close();
    const again = await alice();
    const bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:' });
    try {
      const file = { ...revoked, node: { ...revoked.node, address: again.address! } };
      const err = await rejection((await bob.connect(file)).call('Probe', 'touch', [1]));
      expect([err.status, err.code]).to.deep.equal([403, 'ERR_GRANT_REVOKED']);
      expect(again.grants()[0]!.revokedAt).to.be.a('number');
    } finally {
      await again.close();
      await bob.close();
    }
  });

  it('a message accepted before a restart is still a replay after it', async () => {
    const first = await alice({ encryption: false });
    const grant = await first.grant({ missions: ['probe'], rate: '10/s' });
    const nowS = Math.floor(Date.now() / 1000);
    const path = '/apply/Probe/touch';
    const jws = await signRaw(
      grant.privateJwk,
      { typ: 'wtd-call+jws', kid: grant.kid },
      {
        id: newMessageId(),
        iat: nowS,
        exp: nowS + 30,
        aud: first.id,
        iss: 'bob',
        method: 'PUT',
        path,
        body: new WireCodec().encode([1]),
      },
    );
    probeRuns.count = 0;
    expect((await put(first.address + path, jws)).status).to.equal(200);
    await first.close();
    const again = await alice({ encryption: false });
    try {
      const res = await put(again.address + path, jws);
      // It ran before the restart: never again, and the caller learns that it ran.
      expect([res.status, res.code]).to.deep.equal([409, 'ERR_ALREADY_RAN']);
      expect(probeRuns.count).to.equal(1);
    } finally {
      await again.close();
    }
  });
});
