import { expect } from 'chai';
import { ManualClock } from '../../lib/index.js';
import { TimerQueue, type Timed } from '../../lib/runtime/timer-queue.js';

function entry(log: string[], name: string): Timed {
  return { _at: 0, _seq: 0, _heapIndex: -1, _timeout: () => log.push(name) };
}

describe('TimerQueue', () => {
  it('fires in deadline order, equal deadlines first-in first-out', () => {
    const clock = new ManualClock();
    const q = new TimerQueue(clock);
    const log: string[] = [];
    q.add(entry(log, 'c'), 30);
    q.add(entry(log, 'a'), 10);
    q.add(entry(log, 'b1'), 20);
    q.add(entry(log, 'b2'), 20);
    clock.advance(15);
    expect(log).to.deep.equal(['a']);
    clock.advance(100);
    expect(log).to.deep.equal(['a', 'b1', 'b2', 'c']);
    expect(q.size).to.equal(0);
  });

  it('remaining() reports the time left; remove() cancels', () => {
    const clock = new ManualClock();
    const q = new TimerQueue(clock);
    const log: string[] = [];
    const a = entry(log, 'a');
    q.add(a, 100);
    clock.advance(40);
    expect(q.remaining(a)).to.equal(60);
    expect(q.remove(a)).to.equal(true);
    expect(q.remove(a)).to.equal(false);
    expect(q.remaining(a)).to.equal(false);
    clock.advance(100);
    expect(log).to.deep.equal([]);
  });

  it('keeps the heap valid under random adds and removes', () => {
    const clock = new ManualClock();
    const q = new TimerQueue(clock);
    const fired: number[] = [];
    const live = new Map<number, Timed>();
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    for (let i = 0; i < 500; i++) {
      const delay = Math.floor(rnd() * 1000);
      const e: Timed = { _at: 0, _seq: 0, _heapIndex: -1, _timeout: () => fired.push(delay) };
      q.add(e, delay);
      live.set(i, e);
      if (rnd() < 0.3) {
        const k = Math.floor(rnd() * i);
        const victim = live.get(k);
        if (victim) {
          q.remove(victim);
          live.delete(k);
        }
      }
    }
    const expected = q.size;
    clock.advance(2000);
    expect(fired.length).to.equal(expected);
    for (let i = 1; i < fired.length; i++) expect(fired[i]!).to.be.at.least(fired[i - 1]!);
  });
});
