/**
 * Busy waiting after network I/O, as the schedulers of Erlang's VM do
 * before they sleep (`+sbwt`): for a moment after a call, an answer or a
 * relayed message was sent or received, the event loop keeps turning
 * instead of sleeping in the kernel, so what usually follows within that
 * moment (the answer, the caller's next call) is read as it lands, not
 * after the process is woken up again. On a machine whose idle cores halt
 * (most virtual machines, many small boards) a wake-up costs tens of
 * microseconds; a relayed call has four of them.
 *
 * What pokes it is work someone was allowed to ask for: a node's own
 * requests and calls and their answers, a call that passed every check, a
 * line of its proxy's (checked by its MAC), and at the proxy a message it
 * relayed. What a stranger can send without a grant (a refused request or
 * call, a line that relays nothing) does not, so it costs only what its
 * checks cost.
 *
 * What it costs: at most `busyWaitMs` of one core after each burst of that
 * activity, and never more than {@link WAIT_PER_WORK} times the time the
 * loop worked lately, whoever pokes it; while a node is idle, only after
 * its keep-alive lines. The process waits for the longest `busyWaitMs` of
 * the nodes and proxies running in it; `0` turns it off for one of them.
 * @module
 */

/** Default `busyWaitMs` of a node and of a proxy: covers a relayed call's turns between processes on one machine or a LAN. */
export const BUSY_WAIT_MS = 0.5;

/** Largest `busyWaitMs` taken: longer is a core spent waiting, not latency saved. */
export const MAX_BUSY_WAIT_MS = 100;

/** `ms` as a `busyWaitMs` (the default when undefined); anything else than 0 to {@link MAX_BUSY_WAIT_MS} is a RangeError. */
export function busyWaitOption(where: string, ms: number | undefined): number {
  if (ms === undefined) return BUSY_WAIT_MS;
  if (typeof ms !== 'number' || !(ms >= 0 && ms <= MAX_BUSY_WAIT_MS)) {
    throw new RangeError(`${where}: busyWaitMs must be a number from 0 to ${MAX_BUSY_WAIT_MS}, got ${String(ms)}`);
  }
  return ms;
}

/**
 * Most time the loop spends waiting, as a multiple of the time it worked
 * (over the last {@link WINDOW_MS} to twice that): whatever traffic pokes
 * it, it can make the process wait no more than twice the work it made it
 * do, so no one can keep a core busy that way at the cost of a few bytes.
 */
export const WAIT_PER_WORK = 2;
/** The window over which waiting is held to work, in ms. */
const WINDOW_MS = 100;
/** A gap between two turns longer than this had work in it; a shorter one was waiting, in ms. */
const TURN_GAP_MS = 0.05;

interface Mark {
  /** When, in ms; the loop's work (its active time, waiting included) and the time waited until then. */
  at: number;
  active: number;
  waited: number;
}

/** Time in ms the event loop has been active since the process started (waiting turns included). */
function loopActiveMs(): number {
  return performance.eventLoopUtilization().active;
}

/**
 * The busy wait of one process's event loop. Nodes and proxies enlist
 * their `busyWaitMs` while they run; network code {@link poke}s it when it
 * reads or writes; it turns the loop (one `setImmediate` after another)
 * until the longest enlisted time has passed since the last poke, or it
 * has waited {@link WAIT_PER_WORK} times the time the loop worked lately.
 */
export class BusyWait {
  readonly #now: () => number;
  readonly #later: (turn: () => void) => void;
  readonly #active: () => number;
  readonly #budgets: number[] = [];
  #budget = 0;
  #until = 0;
  #lastPoke = 0;
  #lastTurn = 0;
  #waited = 0;
  #mark: Mark | undefined;
  #before: Mark | undefined;
  #turning = false;
  #turns = 0;
  #idle: (() => void)[] = [];

  /**
   * `now` in ms, how a turn is scheduled and how long the loop has been
   * active in all (ms): by default the monotonic clock, `setImmediate` and
   * the loop's utilisation (pacing of the loop, not time a spec drives).
   */
  constructor(
    now: () => number = () => performance.now(),
    later: (turn: () => void) => void = (t) => setImmediate(t),
    active: () => number = loopActiveMs,
  ) {
    this.#now = now;
    this.#later = later;
    this.#active = active;
  }

  /** Adds a budget of `ms` while its owner runs; returns what takes it back. */
  enlist(ms: number): () => void {
    this.#budgets.push(ms);
    this.#budget = Math.max(this.#budget, ms);
    let enlisted = true;
    return () => {
      if (!enlisted) return;
      enlisted = false;
      this.#budgets.splice(this.#budgets.indexOf(ms), 1);
      this.#budget = this.#budgets.reduce((a, b) => Math.max(a, b), 0);
      // A wait under way is cut to what the budgets left allow.
      this.#until = Math.min(this.#until, this.#lastPoke + this.#budget);
    };
  }

  /** The time waited after a poke now, in ms: the longest enlisted. */
  get budget(): number {
    return this.#budget;
  }

  /** Turns of the loop made while waiting, since the process started. */
  get turns(): number {
    return this.#turns;
  }

  /** Time spent in waiting turns, in ms, since the process started. */
  get waited(): number {
    return this.#waited;
  }

  /** Whether the loop is kept turning now. */
  get turning(): boolean {
    return this.#turning;
  }

  /** Network activity: keep the loop turning for the budget from now. */
  poke(): void {
    if (this.#budget <= 0) return;
    const now = this.#now();
    this.#lastPoke = now;
    this.#until = now + this.#budget;
    if (this.#turning) return;
    this.#turning = true;
    this.#lastTurn = now;
    this.#later(this.#turn);
  }

  /** Resolves once the loop is no longer kept turning. */
  idle(): Promise<void> {
    return this.#turning ? new Promise((resolve) => this.#idle.push(resolve)) : Promise.resolve();
  }

  readonly #turn = (): void => {
    const now = this.#now();
    const gap = now - this.#lastTurn;
    this.#lastTurn = now;
    if (gap <= TURN_GAP_MS) this.#waited += gap;
    if (this.#budget > 0 && now < this.#until && this.#withinWork(now)) {
      this.#turns++;
      this.#later(this.#turn);
      return;
    }
    this.#turning = false;
    for (const resolve of this.#idle.splice(0)) resolve();
  };

  /** Whether the time waited since the mark before the last is within {@link WAIT_PER_WORK} times the work done since. */
  #withinWork(now: number): boolean {
    const active = this.#active();
    if (this.#mark === undefined || now - this.#mark.at >= WINDOW_MS) {
      const mark = { at: now, active, waited: this.#waited };
      this.#before = this.#mark ?? mark;
      this.#mark = mark;
    }
    const base = this.#before!;
    const waited = this.#waited - base.waited;
    const worked = active - base.active - waited;
    return waited <= WAIT_PER_WORK * worked;
  }
}

/** This process's busy wait. */
export const busyWait = new BusyWait();
