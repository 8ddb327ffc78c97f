import { expect } from 'chai';
import { MissionError, MissionTable, WireError, WtdExport, WtdNode, type GrantFile } from '../../lib/index.js';
import { rejection, thrown } from '../fixtures/helpers.js';

/** Functions of every shape a caller may meet, and a counter of the runs that happened. */
const runs = { count: 0 };
class Shapes {
  @WtdExport('shapes')
  static one(name: string) {
    runs.count++;
    return `hello, ${name}`;
  }
  @WtdExport('shapes')
  static none() {
    runs.count++;
    return 'none';
  }
  @WtdExport('shapes')
  static defaults(a: number, b = 2, { c } = { c: 3 }) {
    runs.count++;
    return a + b + c;
  }
  @WtdExport('shapes')
  static rest(first: string, ...more: string[]) {
    runs.count++;
    return [first, ...more].join(' ');
  }
  @WtdExport('shapes', { arity: { min: 0, max: 1 } })
  static optional(name?: string) {
    runs.count++;
    return name ?? 'stranger';
  }
  @WtdExport('shapes', { arity: 2 })
  static declared(...args: unknown[]) {
    runs.count++;
    return args.length;
  }
}

describe('@WtdExport(mission, { arity }): exported functions declare their arity', () => {
  it("is the function's own by default: its length to the parameters it declares, unbounded with a rest parameter", () => {
    const table = new MissionTable();
    table.load(Shapes);
    const arity = (name: string) => table.lookupFunction('Shapes', name, 'shapes')!.arity;
    expect(arity('one')).to.deep.equal({ min: 1, max: 1 });
    expect(arity('none')).to.deep.equal({ min: 0, max: 0 });
    expect(arity('defaults')).to.deep.equal({ min: 1, max: 3 });
    expect(arity('rest')).to.deep.equal({ min: 1, max: Infinity });
    expect(arity('optional')).to.deep.equal({ min: 0, max: 1 });
    expect(arity('declared')).to.deep.equal({ min: 2, max: 2 });
    expect(table.catalogue().shapes!.functions).to.deep.equal([
      'Shapes/one/1',
      'Shapes/none/0',
      'Shapes/defaults/1..3',
      'Shapes/rest/1..',
      'Shapes/optional/0..1',
      'Shapes/declared/2',
    ]);
  });

  it('a declared arity that is not one is refused when loaded: ERR_BAD_ARITY', () => {
    for (const arity of [-1, 1.5, { min: 2, max: 1 }, { max: 1 }, 'two']) {
      class Bad {
        @WtdExport('shapes', { arity: arity as never })
        static f() {}
      }
      const err = thrown(() => new MissionTable().load(Bad));
      expect(err, JSON.stringify(arity)).to.be.instanceOf(MissionError);
      expect(err.code).to.equal('ERR_BAD_ARITY');
    }
  });

  describe('a remote call with another number of arguments', () => {
    let alice: WtdNode;
    let bob: WtdNode;
    let grant: GrantFile;
    beforeEach(async () => {
      alice = await WtdNode.start({ name: 'alice', dataDir: ':memory:' });
      alice.load(Shapes);
      await alice.listen({ port: 0 });
      grant = await alice.grant({ missions: ['shapes'], rate: '100/s' });
      bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:' });
      runs.count = 0;
    });
    afterEach(async () => {
      await bob.close();
      await alice.close();
    });

    it('is refused before the function runs (ERR_BAD_ARITY, 400), and counts no use', async () => {
      const remote = await bob.connect(grant);
      const calls: [string, unknown[]][] = [
        ['one', []],
        ['one', ['a', 'b']],
        ['none', [1]],
        ['defaults', []],
        ['defaults', [1, 2, { c: 3 }, 4]],
        ['rest', []],
        ['optional', ['a', 'b']],
        ['declared', [1]],
      ];
      for (const [fn, args] of calls) {
        const err = await rejection(remote.call('Shapes', fn, args));
        expect(err, `${fn}/${args.length}`).to.be.instanceOf(WireError);
        expect([err.status, err.code], `${fn}/${args.length}`).to.deep.equal([400, 'ERR_BAD_ARITY']);
      }
      expect(runs.count).to.equal(0);
      expect(alice.grants()[0]!.uses).to.equal(0);
      expect(await remote.call('Shapes', 'one', ['bob'])).to.equal('hello, bob');
      expect(await remote.call('Shapes', 'defaults', [1])).to.equal(6);
      expect(await remote.call('Shapes', 'rest', ['a', 'b', 'c'])).to.equal('a b c');
      expect(await remote.call('Shapes', 'optional', [])).to.equal('stranger');
      expect(await remote.call('Shapes', 'declared', [1, 2])).to.equal(2);
      expect(runs.count).to.equal(5);
    });
  });
});
