import { expect } from 'chai';
import { ManualClock, WireError } from '../../lib/index.js';
import { isClientError, LogThrottle } from '../../lib/runtime/log-throttle.js';
import { thrown } from '../fixtures/helpers.js';
import { CapturingLogger } from '../fixtures/sockets.js';

const aborted = (): Error => Object.assign(new Error('aborted'), { code: 'ECONNRESET' });

describe('LogThrottle(logger, clock, { lines, intervalMs })', () => {
  let logger: CapturingLogger;
  let clock: ManualClock;
  beforeEach(() => {
    logger = new CapturingLogger();
    clock = new ManualClock(Date.UTC(2026, 0, 1));
  });

  it('writes at most `lines` lines of a kind per interval, then one line with how many were left out', () => {
    const log = new LogThrottle(logger, clock, { lines: 3, intervalMs: 10_000 });
    for (let i = 0; i < 3000; i++) log.line('aborted', `request ${i} was cut off`);
    expect(logger.lines).to.deep.equal(['request 0 was cut off', 'request 1 was cut off', 'request 2 was cut off']);
    clock.advance(9_999);
    expect(logger.lines).to.have.length(3);
    clock.advance(1);
    expect(logger.lines.slice(3)).to.deep.equal(['… 2997 similar lines suppressed (aborted)']);
    // The next interval starts with its first line, with its own share.
    log.line('aborted', 'again');
    expect(logger.lines.slice(4)).to.deep.equal(['again']);
    clock.advance(10_000);
    expect(logger.lines).to.have.length(5); // nothing was left out: no count line
  });

  it('gives each kind its own share, so a flood of one does not hide another', () => {
    const log = new LogThrottle(logger, clock, { lines: 1 });
    for (let i = 0; i < 50; i++) log.line('connection', 'refused a connection');
    log.line('internal', 'a real fault');
    expect(logger.lines).to.deep.equal(['refused a connection', 'a real fault']);
    clock.advance(60_000);
    expect(logger.lines.slice(2)).to.deep.equal(['… 49 similar lines suppressed (connection)']);
  });

  it('logs a client error as one line without its stack, and a fault with the error itself', () => {
    const log = new LogThrottle(logger, clock);
    const fault = new Error('disk on fire');
    log.error('aborted', 'a request was cut off', aborted());
    log.error('refused', 'a request was refused', new WireError('ERR_BAD_JWS', 400, 'not a JWS'));
    log.error('internal', 'a request failed', fault);
    expect(logger.entries).to.deep.equal([
      { message: 'a request was cut off: aborted', details: [] },
      { message: 'a request was refused: not a JWS', details: [] },
      { message: 'a request failed: disk on fire', details: [fault] },
    ]);
  });

  it('flush() writes what was left out at once (a server that stops)', () => {
    const log = new LogThrottle(logger, clock, { lines: 1 });
    log.line('aborted', 'one');
    log.line('aborted', 'two');
    log.flush();
    expect(logger.lines).to.deep.equal(['one', '… 1 similar line suppressed (aborted)']);
    clock.advance(60_000);
    expect(logger.lines).to.have.length(2);
  });

  it('rejects options that are not positive with a TypeError', () => {
    expect(thrown(() => new LogThrottle(logger, clock, { lines: 0 }))).to.be.instanceOf(TypeError);
    expect(thrown(() => new LogThrottle(logger, clock, { intervalMs: -1 }))).to.be.instanceOf(TypeError);
  });
});

describe('isClientError(err)', () => {
  it('is true for 4xx refusals, aborted requests and reset sockets; false for faults', () => {
    expect(isClientError(aborted())).to.equal(true);
    expect(isClientError(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }))).to.equal(true);
    expect(isClientError(Object.assign(new Error('Parse Error'), { code: 'HPE_INVALID_METHOD' }))).to.equal(true);
    expect(isClientError(new WireError('ERR_TOO_LARGE', 413, 'too large'))).to.equal(true);
    expect(isClientError(new WireError('ERR_INTERNAL', 500, 'failed'))).to.equal(false);
    expect(isClientError(new TypeError('x is undefined'))).to.equal(false);
    expect(isClientError('aborted')).to.equal(false);
  });
});
