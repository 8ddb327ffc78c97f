import { expect } from 'chai';
import { Pid, WtdNode } from '../../lib/index.js';
import { PidRegistry } from '../../lib/transport/pid-registry.js';
import { WireCodec } from '../../lib/wire/codec.js';

describe('pids of other nodes print with their node’s name', () => {
  const route = { sendToPid: () => undefined };
  let node: WtdNode;
  beforeEach(async () => {
    node = await WtdNode.start({ name: 'bob', dataDir: ':memory:' });
  });
  afterEach(() => node.close());

  it('as the node’s own pids do, and are told apart by the node’s id, not its name', () => {
    const pids = new PidRegistry(node, node.id);
    const a = pids.proxy({ node: 'AAAAAAAAAAAAAAAA', name: 'alice', id: 1, token: 't' }, route);
    const again = pids.proxy({ node: 'AAAAAAAAAAAAAAAA', name: 'alice', id: 1, token: 't' }, route);
    const otherAlice = pids.proxy({ node: 'BBBBBBBBBBBBBBBB', name: 'alice', id: 1, token: 't' }, route);
    expect([String(a), String(otherAlice)]).to.deep.equal(['<alice.1.0>', '<alice.1.0>']);
    expect(a.equals(again)).to.equal(true);
    expect(a.equals(otherAlice)).to.equal(false);
    expect(a.equals(new Pid('alice', 1, 0))).to.equal(false); // not a local pid of a node called alice
  });

  it('a name that is not a node name is not taken from the wire: the id prints', () => {
    const codec = new WireCodec<undefined>({
      out: () => ({ node: 'x', id: 0, token: 't' }),
      in: (billet) => new Pid(billet.name ?? billet.node, billet.id, 0),
    });
    const encoded = codec.encode(new Pid('bob', 1, 0));
    const hostile = JSON.parse(JSON.stringify(encoded).replace('"node":"x"', '"node":"x","name":"evil\\u001b[31m"'));
    expect(String(codec.decode(hostile))).to.equal('<x.0.0>');
    const named = JSON.parse(JSON.stringify(encoded).replace('"node":"x"', '"node":"x","name":"carol"'));
    expect(String(codec.decode(named))).to.equal('<carol.0.0>');
  });
});
