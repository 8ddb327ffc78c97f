import { expect } from 'chai';
import { busyness, leastBusy, rendezvous, rendezvousScore, RoundRobin } from '../../lib/transport/group-pick.js';

const member = (nodeId: string, inFlight = 0, load = 0, latencyMs = 1) => ({ nodeId, inFlight, load, latencyMs });

/** A random source that returns the given numbers in turn. */
function draws(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length]!;
}

describe('group-pick: the pure pickers of a mission group', () => {
  describe('leastBusy(members, random): the power of two choices', () => {
    it('of the two drawn, the one with fewer calls in flight wins; equal, the lower reported load; equal, the first', () => {
      const a = member('a', 3, 0);
      const b = member('b', 1, 9);
      const c = member('c', 1, 2);
      expect(leastBusy([a, b, c], draws(0, 0))).to.equal(b); // a and b drawn
      expect(leastBusy([a, b, c], draws(0.5, 0.5))).to.equal(c); // b and c drawn: same in flight, c reported less
    });

    it('draws two distinct members; none or one is answered at once', () => {
      expect(leastBusy([])).to.equal(undefined);
      const only = member('only', 99);
      expect(leastBusy([only])).to.equal(only);
      const x = member('x', 0);
      const y = member('y', 5);
      // The same index drawn twice is moved to the next one: never a member against itself.
      expect(leastBusy([x, y], draws(0, 0))).to.equal(x);
      expect(leastBusy([y, x], draws(0, 0))).to.equal(x);
    });

    it('calls in flight are weighed by the recent round trip: a member 50 times slower loses to one with many more in flight', () => {
      const slow = member('slow', 0, 0, 50);
      const fast = member('fast', 20, 0, 2);
      expect(busyness(slow)).to.equal(50);
      expect(busyness(fast)).to.equal(42);
      expect(leastBusy([slow, fast], draws(0, 0))).to.equal(fast);
      expect(leastBusy([slow, member('fast', 30, 0, 2)], draws(0, 0))).to.equal(slow);
    });

    it('over many picks, equal members share the calls evenly', () => {
      const ms = [member('a'), member('b'), member('c')];
      const counts = new Map<string, number>();
      for (let i = 0; i < 3000; i++) {
        const m = leastBusy(ms)!;
        counts.set(m.nodeId, (counts.get(m.nodeId) ?? 0) + 1);
      }
      for (const n of counts.values()) expect(n / 3000).to.be.within(0.25, 0.42);
    });
  });

  describe('RoundRobin.pick(members)', () => {
    it('takes each member in turn, and copes with members that come and go', () => {
      const rr = new RoundRobin();
      const ms = ['a', 'b', 'c'];
      expect([rr.pick(ms), rr.pick(ms), rr.pick(ms), rr.pick(ms)]).to.deep.equal(['a', 'b', 'c', 'a']);
      expect(rr.pick([])).to.equal(undefined);
      expect(['a', 'b']).to.include(rr.pick(['a', 'b']));
    });
  });

  describe('rendezvous(members, key): highest random weight hashing', () => {
    const keys = Array.from({ length: 10_000 }, (_, i) => `key-${i}`);
    const three = [member('node-a'), member('node-b'), member('node-c')];

    it('is stable: the same key, the same member, whatever the order of the members', () => {
      for (const key of keys.slice(0, 200)) {
        expect(rendezvous(three, key)).to.equal(rendezvous([...three].reverse(), key));
      }
      expect(rendezvousScore('k', 'n')).to.equal(rendezvousScore('k', 'n'));
      expect(rendezvous([], 'k')).to.equal(undefined);
    });

    it('10,000 keys on 3 members: the most loaded has at most 1.3 times the least', () => {
      const counts = new Map<string, number>();
      for (const key of keys) {
        const m = rendezvous(three, key)!;
        counts.set(m.nodeId, (counts.get(m.nodeId) ?? 0) + 1);
      }
      const loads = [...counts.values()];
      expect(loads).to.have.length(3);
      expect(Math.max(...loads) / Math.min(...loads)).to.be.at.most(1.3);
    });

    it('removing one member moves at most 5 % of the other members’ keys (none, in fact): only its own move', () => {
      const before = new Map(keys.map((k) => [k, rendezvous(three, k)!.nodeId]));
      const two = three.filter((m) => m.nodeId !== 'node-c');
      let others = 0;
      let moved = 0;
      for (const key of keys) {
        const was = before.get(key)!;
        const now = rendezvous(two, key)!.nodeId;
        if (was === 'node-c') continue;
        others++;
        if (now !== was) moved++;
      }
      expect(others).to.be.greaterThan(6000);
      expect(moved / others).to.be.at.most(0.05);
      expect(moved).to.equal(0);
    });
  });
});
