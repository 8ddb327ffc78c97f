import { expect } from 'chai';
import { Mailbox } from '../../lib/runtime/mailbox.js';

describe('Mailbox', () => {
  it('push/shift keep arrival order across growth', () => {
    const box = new Mailbox();
    for (let i = 0; i < 1000; i++) box.push(i);
    expect(box.length).to.equal(1000);
    for (let i = 0; i < 1000; i++) expect(box.shift()).to.equal(i);
    expect(box.length).to.equal(0);
  });

  it('take(match) removes the first match and leaves the rest in order', () => {
    const box = new Mailbox();
    for (const m of ['a', 'b', 'c', 'd']) box.push(m);
    expect(box.take((m) => m === 'c', null)).to.equal('c');
    expect(box.take((m) => m === 'x', null)).to.equal(null);
    expect(box.toArray()).to.deep.equal(['a', 'b', 'd']);
    expect(box.length).to.equal(3);
    expect([box.shift(), box.shift(), box.shift()]).to.deep.equal(['a', 'b', 'd']);
  });

  it('wraps around the ring and compacts holes without losing messages', () => {
    const box = new Mailbox();
    const expected: number[] = [];
    for (let i = 0; i < 500; i++) {
      box.push(i);
      expected.push(i);
    }
    for (let i = 0; i < 100; i++) expect(box.shift()).to.equal(expected.shift());
    // Remove every odd number from the middle: creates many holes, forces compaction.
    for (let i = 101; i < 499; i += 2) {
      expect(box.take((m) => m === i, null)).to.equal(i);
      expected.splice(expected.indexOf(i), 1);
    }
    for (let i = 500; i < 700; i++) {
      box.push(i);
      expected.push(i);
    }
    expect(box.length).to.equal(expected.length);
    expect(box.toArray()).to.deep.equal(expected);
  });

  it('a selective take at the front drops the holes before it', () => {
    const box = new Mailbox();
    for (const m of [1, 2, 3, NaN, 5]) box.push(m);
    box.take((m) => m === 2, null);
    box.take((m) => m === 3, null);
    expect(box.take((m) => m === 1, null)).to.equal(1);
    expect(Number.isNaN(box.take((m) => Number.isNaN(m), null))).to.equal(true);
    expect(box.length).to.equal(1);
    expect(box.shift()).to.equal(5);
  });

  it('removeAll drops matching messages', () => {
    const box = new Mailbox();
    for (let i = 0; i < 10; i++) box.push(i);
    expect(box.removeAll((m) => (m as number) % 2 === 0)).to.equal(5);
    expect(box.toArray()).to.deep.equal([1, 3, 5, 7, 9]);
  });
});
