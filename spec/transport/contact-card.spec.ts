import { expect } from 'chai';
import { Greeter } from '../../samples/greeter.js';
import { WtdError, WtdNode, type ContactCard } from '../../lib/index.js';
import { rejection } from '../fixtures/helpers.js';

describe('WtdNode.card(), grant({ to: card }) and connect(card)', () => {
  let alice: WtdNode;
  let bob: WtdNode;
  beforeEach(async () => {
    alice = await WtdNode.start({ name: 'alice', dataDir: ':memory:' });
    alice.load(Greeter);
    Greeter.node = alice;
    bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:' });
  });
  afterEach(async () => {
    Greeter.node = undefined;
    await bob.close();
    await alice.close();
  });

  it('a card says who the node is and where it is reached now; nothing secret', async () => {
    expect(alice.card()).to.deep.equal({
      wtd: 'card',
      version: 1,
      name: 'alice',
      id: alice.id,
      publicJwk: alice.publicJwk,
      address: null,
      proxy: null,
    });
    await alice.listen({ port: 0 });
    expect(alice.card().address).to.equal(alice.address);
    expect(JSON.stringify(alice.card())).to.not.include('"d"');
  });

  it("Alice grants to Bob's card; Bob calls with his own key, given her card as it is or as nodeKey", async () => {
    await alice.listen({ port: 0 });
    const card = JSON.parse(JSON.stringify(bob.card())) as ContactCard; // as sent in a file
    const record = await alice.grant({ missions: ['greetings'], rate: '10/s', to: card, label: 'bob' });
    expect(record.publicJwk.x).to.equal(bob.publicJwk.x);
    const aliceCard = JSON.parse(JSON.stringify(alice.card())) as ContactCard;
    expect(await (await bob.connect(aliceCard)).call('Greeter', 'hello', ['bob'])).to.equal('hello, bob, from alice');
    const remote = await bob.connect({ nodeKey: aliceCard, address: alice.address! });
    expect(await remote.call('Greeter', 'hello', ['bob'])).to.equal('hello, bob, from alice');
    // The key file older versions of `wtd whoami --out` wrote still grants.
    const carol = await WtdNode.start({ name: 'carol', dataDir: ':memory:' });
    await alice.grant({
      missions: ['greetings'],
      rate: '1/s',
      to: { wtd: 'key', name: 'carol', id: carol.id, publicJwk: carol.publicJwk } as never,
    });
    expect(await (await carol.connect(aliceCard)).call('Greeter', 'hello', ['carol'])).to.equal(
      'hello, carol, from alice',
    );
    await carol.close();
  });

  it('a card whose id is not its key’s, or that holds no key, is refused: ERR_BAD_KEY', async () => {
    await alice.listen({ port: 0 });
    const forged = { ...alice.card(), id: bob.id };
    const err = await rejection(bob.connect(forged));
    expect(err).to.be.instanceOf(WtdError);
    expect(err.code).to.equal('ERR_BAD_KEY');
    const empty = { wtd: 'card', name: 'x' } as never;
    expect((await rejection(alice.grant({ missions: ['greetings'], rate: '1/s', to: empty }))).code).to.equal(
      'ERR_BAD_KEY',
    );
    expect(alice.grants()).to.deep.equal([]);
  });

  it('a card with no address is called through the proxy this node joined, or says ERR_NO_PROXY', async () => {
    const err = await rejection(bob.connect(alice.card()));
    expect(err.code).to.equal('ERR_NO_PROXY');
  });
});
