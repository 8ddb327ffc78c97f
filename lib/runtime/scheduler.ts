/**
 * Something the scheduler can run: a process with work to do, or an exit
 * signal on its way.
 * @internal
 */
export interface Runnable {
  /** Does one turn of work. Calls {@link Scheduler.tick} per unit of work. */
  _run(): void;
}

/** Reductions between looks at the clock. */
const REDUCTIONS = 2000;
/** How long work may hold the event loop before it must let I/O and timers in. */
const SLICE_MS = 4;

/**
 * Runs ready processes in turn and keeps the event loop breathing.
 *
 * JavaScript cannot pre-empt a running function, so fairness is counted the
 * way BEAM counts it: every message a process takes (a *reduction*) calls
 * {@link tick}. Work continues in microtasks, which is what makes a local
 * message cost tens of nanoseconds, until a slice of {@link SLICE_MS} has
 * passed since the current macrotask began. Then `tick` says no, the caller
 * parks its process in the run queue, and the queue resumes from
 * `setImmediate`, after timers and I/O have had their turn.
 * @internal
 */
export class Scheduler {
  // Invariant: every entry is queued once (processes guard with their own
  // _queued flag); #scheduled is true while a drain is pending or running.
  #queue: Runnable[] = [];
  #head = 0;
  #scheduled = false;
  #macro = false;
  #budget = REDUCTIONS;
  #inSlice = false;
  #sliceStart = 0;

  readonly #endSlice = (): void => {
    this.#inSlice = false;
  };

  readonly #drainMicro = (): void => {
    this.#drain();
  };

  readonly #drainMacro = (): void => {
    this.#macro = false;
    this.#startSlice();
    this.#budget = REDUCTIONS;
    this.#drain();
  };

  /** Entries waiting to run. */
  get length(): number {
    return this.#queue.length - this.#head;
  }

  /** Puts `r` at the back of the run queue. */
  enqueue(r: Runnable): void {
    this.#queue.push(r);
    if (!this.#scheduled) {
      this.#scheduled = true;
      if (this.hasBudget) queueMicrotask(this.#drainMicro);
      else this.#scheduleMacro();
    }
  }

  /**
   * Counts one reduction. True: carry on now. False: the slice is spent;
   * park the work in the run queue so the event loop gets a turn first.
   */
  tick(): boolean {
    if (--this.#budget > 0) return true;
    return this.#refill();
  }

  /** True while the current slice has budget left (does not count a reduction). */
  get hasBudget(): boolean {
    return this.#budget > 0 || this.#refill();
  }

  #refill(): boolean {
    if (this.#macro) return false;
    const now = performance.now();
    if (!this.#inSlice) {
      this.#startSlice(now);
    } else if (now - this.#sliceStart >= SLICE_MS) {
      this.#budget = 0;
      return false;
    }
    this.#budget = REDUCTIONS;
    return true;
  }

  #startSlice(now = performance.now()): void {
    this.#sliceStart = now;
    if (!this.#inSlice) {
      this.#inSlice = true;
      // setImmediate runs once the current macrotask and its microtasks are
      // done, which is exactly when this slice ends.
      setImmediate(this.#endSlice);
    }
  }

  #scheduleMacro(): void {
    if (this.#macro) return;
    this.#macro = true;
    setImmediate(this.#drainMacro);
  }

  #drain(): void {
    for (;;) {
      const q = this.#queue;
      if (this.#head >= q.length) break;
      if (!this.tick()) {
        this.#scheduleMacro();
        return;
      }
      const r = q[this.#head]!;
      q[this.#head++] = undefined as unknown as Runnable;
      r._run();
      // Drop the consumed prefix now and then so the array does not grow forever.
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
    }
    this.#queue.length = 0;
    this.#head = 0;
    this.#scheduled = false;
  }
}

/**
 * The one scheduler of this JavaScript process. It is shared by every node in
 * it, because the event loop it protects is shared too.
 * @internal
 */
export const scheduler = new Scheduler();
