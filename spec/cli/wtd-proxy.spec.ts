import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { EXIT } from '../../lib/cli/wtd.js';
import { systemWallClock, WtdProxy } from '../../lib/index.js';
import { newKeyPair } from '../../lib/security/keys.js';
import { scratch, wtd } from '../fixtures/cli.js';
import { MemoryLogger } from '../fixtures/helpers.js';
import { RawClient } from '../fixtures/proxy.js';

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

describe('wtd proxy nodes / wtd proxy remove <id|email>: the operator’s view, beside a running proxy', function () {
  this.timeout(20_000);
  let home: string;
  let proxy: WtdProxy | undefined;
  beforeEach(() => {
    home = scratch();
  });
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
    rmSync(home, { recursive: true, force: true });
  });

  it('lists who registered (an e-mail with control characters never gets in), and removes one, freeing its e-mail', async () => {
    // The proxy `wtd proxy --data-dir home` runs, in this program.
    proxy = await WtdProxy.start({ dataDir: join(home, 'proxy'), port: 0, logger: new MemoryLogger() });
    const p = proxy;
    const hostile = 'evil\u001b]0;owned\u0007@example.org';
    const keys = await newKeyPair();
    const refused = await new RawClient(p, keys, systemWallClock, 100).put('/register', {
      email: hostile,
      publicJwk: keys.publicJwk,
    });
    expect([refused.status, refused.code]).to.deep.equal([400, 'ERR_PROXY_BAD_REQUEST']);
    const email = 'squatter@example.org';
    const squatter = await RawClient.register(p, email);
    const alice = await RawClient.register(p, 'alice@example.org');
    await alice.accept();
    const dir = ['--data-dir', home];

    const listed = await wtd(['proxy', 'nodes', ...dir]);
    expect(listed.code, listed.err).to.equal(EXIT.ok);
    expect(listed.out).to.match(/^NAME\s+ID\s+E-MAIL\s+FROM\s+REGISTERED\s+LAST SEEN\s+QUEUED/);
    expect(listed.out).to.include(squatter.id).and.include('alice@example.org').and.include('127.0.0.1');
    expect(listed.out).to.include(email);
    expect(CONTROL.test(listed.out + listed.err)).to.equal(false);
    const json = JSON.parse((await wtd(['proxy', 'nodes', '--json', ...dir])).out) as { id: string; email: string }[];
    expect(json.map((n) => n.id).sort()).to.deep.equal([squatter.id, alice.id].sort());

    const removed = await wtd(['proxy', 'remove', email.toUpperCase(), ...dir]);
    expect(removed.code, removed.err).to.equal(EXIT.ok);
    expect(CONTROL.test(removed.out)).to.equal(false);
    // The running proxy drops it at its next sweep; its e-mail is another key's to take.
    await p.until((s) => !s.nodes.some((n) => n.id === squatter.id));
    const owner = new RawClient(p, await newKeyPair(), squatter.clock, 100);
    const taken = await owner.put('/register', { email, publicJwk: owner.keys.publicJwk });
    expect(taken.status, taken.text).to.equal(200);
    // An id may start with '-': after '--' it is not read as a flag.
    expect((await wtd(['proxy', 'remove', ...dir, '--', alice.id])).code).to.equal(EXIT.ok);
    await p.until((s) => !s.nodes.some((n) => n.id === alice.id));
    expect(JSON.parse((await wtd(['proxy', 'nodes', '--json', ...dir])).out)).to.have.length(1);
  });

  it('says what is wrong: no proxy there, no such node, a wrong subcommand', async () => {
    expect((await wtd(['proxy', 'nodes', '--data-dir', home])).code).to.equal(EXIT.notFound);
    proxy = await WtdProxy.start({ dataDir: join(home, 'proxy'), port: 0, logger: new MemoryLogger() });
    expect((await wtd(['proxy', 'remove', 'nobody@example.org', '--data-dir', home])).code).to.equal(EXIT.notFound);
    expect((await wtd(['proxy', 'remove', '--data-dir', home])).code).to.equal(EXIT.usage);
    expect((await wtd(['proxy', 'frobnicate', '--data-dir', home])).code).to.equal(EXIT.usage);
    expect((await wtd(['proxy', 'nodes', '--data-dir', home])).out).to.equal('No node is registered at this proxy.');
  });
});
