import { expect } from 'chai';
import { NotSerializableError, Pid, WireError } from '../../lib/index.js';
import { WireCodec, type BilletDoux } from '../../lib/wire/codec.js';
import SuperJSON from 'superjson';
import { thrown } from '../fixtures/helpers.js';

/** A codec whose pid hooks record what they did. */
function codec() {
  const out: Pid[] = [];
  const c = new WireCodec<string>({
    out: (pid, peer): BilletDoux => {
      out.push(pid);
      return { node: pid.node, id: pid.id, token: `token-for-${peer}` };
    },
    in: (b, peer) => new Pid(`${b.node}@${peer}`, b.id, 0),
  });
  return { c, out };
}

function badArgs(fn: () => unknown): WireError {
  const err = thrown(fn);
  expect(err).to.be.instanceOf(WireError);
  expect(err.code).to.equal('ERR_BAD_ARGUMENTS');
  expect(err.status).to.equal(400);
  return err;
}

describe('WireCodec.encode(value) / decode(encoded)', () => {
  it('round-trips plain data, Date, BigInt, Map, Set, undefined and special numbers', () => {
    const { c } = codec();
    const value = {
      s: 'text',
      n: 1.5,
      b: true,
      nil: null,
      u: undefined,
      d: new Date('2026-01-02T03:04:05Z'),
      big: 12345678901234567890n,
      m: new Map<unknown, unknown>([
        ['k', [1, 2]],
        [3, new Set(['x'])],
      ]),
      special: [NaN, Infinity, -Infinity, -0],
      nested: [{ deep: [1, { deeper: 'ok' }] }],
    };
    const back = c.decode(JSON.parse(JSON.stringify(c.encode(value)))) as typeof value;
    expect(back).to.deep.equal(value);
    expect(back.d).to.be.instanceOf(Date);
    expect(Object.is(back.special[3], -0)).to.equal(true);
  });

  it('encodes plain JSON as superjson would, as a copy taken at once, and what needs annotations still round-trips', () => {
    const { c } = codec();
    const plain = { s: 'x', n: [1, 2.5, -3], b: false, nil: null, o: { deep: [{ k: 'v' }] } };
    const encoded = c.encode(plain);
    expect(encoded).to.deep.equal(new SuperJSON({ dedupe: false }).serialize(plain));
    expect(encoded).to.not.have.property('meta');
    // Taken when encoded: a change the caller makes afterwards does not travel.
    plain.o.deep[0]!.k = 'changed';
    plain.n.push(4);
    expect(encoded.json).to.deep.equal({ s: 'x', n: [1, 2.5, -3], b: false, nil: null, o: { deep: [{ k: 'v' }] } });
    // Each of these needs superjson's annotations somewhere below plain JSON.
    const nullProto = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1 });
    for (const value of [
      { a: [{ b: -0 }] },
      { a: { u: undefined } },
      { n: NaN },
      { big: 1n },
      [new Date(0)],
      nullProto,
    ]) {
      const back = c.decode(JSON.parse(JSON.stringify(c.encode(value))));
      expect(back).to.deep.equal(value);
    }
    expect(Object.is((c.decode(JSON.parse(JSON.stringify(c.encode([-0])))) as number[])[0], -0)).to.equal(true);
    // Refusals keep their precise errors: the plain path hands anything odd to the checked one.
    expect(thrown(() => c.encode({ a: [{ f: () => 1 }] })).code).to.equal('ERR_NOT_SERIALIZABLE');
    const err = badArgs(() => c.decode({ json: JSON.parse('{"a": {"__proto__": {"x": 1}}}') }));
    expect(err.code).to.equal('ERR_BAD_ARGUMENTS');
  });

  it('turns pids into billets-doux and back through the hooks, with the call context', () => {
    const { c, out } = codec();
    const pid = new Pid('bob', 7, 0);
    const encoded = c.encode({ replyTo: pid }, 'alice');
    expect(JSON.stringify(encoded.json)).to.include('token-for-alice');
    expect(out).to.deep.equal([pid]);
    const back = c.decode(JSON.parse(JSON.stringify(encoded)), 'bob') as { replyTo: Pid };
    expect(back.replyTo).to.be.instanceOf(Pid);
    expect(String(back.replyTo)).to.equal('<bob@bob.7.0>');
  });

  it('refuses, before sending, what cannot travel: ERR_NOT_SERIALIZABLE', () => {
    const { c } = codec();
    class Thing {}
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    let deep: unknown = 'leaf';
    for (let i = 0; i < 40; i++) deep = [deep];
    const cases: unknown[] = [
      () => 1,
      { f: function named() {} },
      Symbol('s'),
      new Thing(),
      /re/,
      new Error('e'),
      new Uint8Array(2),
      cyclic,
      deep,
      10n ** 2000n,
      new Map([['k', () => 1]]),
      JSON.parse('{"__proto__": {"polluted": true}}'),
    ];
    for (const value of cases) {
      const err = thrown(() => c.encode(value));
      expect(err, String(value)).to.be.instanceOf(NotSerializableError);
      expect(err.code).to.equal('ERR_NOT_SERIALIZABLE');
    }
    expect(thrown(() => c.encode({ f: () => 1 })).message).to.match(/value\.f is a function/);
  });

  it('a codec without pid hooks refuses pids both ways', () => {
    const plain = new WireCodec();
    expect(thrown(() => plain.encode(new Pid('a', 1, 0))).code).to.equal('ERR_NOT_SERIALIZABLE');
    badArgs(() =>
      plain.decode({ json: { node: 'a', id: 1, token: 't' }, meta: { values: [['custom', 'wtd.pid']], v: 1 } }),
    );
  });

  it('refuses hostile annotations: classes, errors, regexps, typed arrays, symbols, unknown custom tags', () => {
    const { c } = codec();
    const annotations: unknown[] = [
      ['class', 'Thing'],
      'Error',
      'regexp',
      ['typed-array', 'Uint8Array'],
      ['symbol', 's'],
      ['custom', 'other'],
      'bigint',
      'URL',
      'nonsense',
    ];
    for (const a of annotations) {
      badArgs(() => c.decode({ json: { x: 'v' }, meta: { values: { x: [a] }, v: 1 } }));
    }
  });

  it('refuses prototype paths, shared references, odd meta and over-deep JSON', () => {
    const { c } = codec();
    badArgs(() => c.decode({ json: {}, meta: { values: { '__proto__.polluted': ['undefined'] }, v: 1 } }));
    badArgs(() => c.decode({ json: {}, meta: { values: { 'a.constructor.prototype': ['undefined'] }, v: 1 } }));
    badArgs(() => c.decode({ json: JSON.parse('{"__proto__": {"x": 1}}') }));
    badArgs(() => c.decode({ json: { a: {}, b: {} }, meta: { referentialEqualities: { a: ['b'] }, v: 1 } }));
    badArgs(() => c.decode({ json: 1, meta: { v: 2 } }));
    badArgs(() => c.decode({ json: 1, meta: 'x' }));
    badArgs(() => c.decode(null as never));
    let deep: unknown = 1;
    for (let i = 0; i < 40; i++) deep = [deep];
    badArgs(() => c.decode({ json: deep }));
    expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
  });

  it('refuses a BigInt over the cap, a malformed BigInt or pid, and a map that is not pairs', () => {
    const { c } = codec();
    badArgs(() => c.decode({ json: '9'.repeat(1001), meta: { values: [['custom', 'wtd.bigint']], v: 1 } }));
    badArgs(() => c.decode({ json: '12abc', meta: { values: [['custom', 'wtd.bigint']], v: 1 } }));
    badArgs(() =>
      c.decode({ json: { node: 'a', id: 'x', token: 't' }, meta: { values: [['custom', 'wtd.pid']], v: 1 } }),
    );
    badArgs(() => c.decode({ json: 42, meta: { values: ['map'], v: 1 } }));
    expect(c.decode({ json: '-' + '9'.repeat(1000), meta: { values: [['custom', 'wtd.bigint']], v: 1 } })).to.equal(
      -(10n ** 1000n - 1n),
    );
  });
});
