import { formatReason } from '../errors.js';
import { DownMessage, ExitMessage, TIMEOUT } from '../runtime/messages.js';
import type { Pid, Ref } from '../runtime/pid.js';
import type { Process } from '../runtime/process.js';
import type { FullChildSpec } from './child-spec.js';

/** @internal One child to stop: its pid, its spec, and how reports name it. */
export interface Victim {
  pid: Pid;
  spec: FullChildSpec;
  label: string;
}

interface Pending {
  victim: Victim;
  /** Clock time after which it is killed; Infinity for `'infinity'` and once killed. */
  deadline: number;
}

/**
 * Stops `victims` all at once, as OTP's supervisor stops dynamic children:
 * asks each (or kills it, for `brutal_kill`), then waits for every `DOWN`
 * in one receive loop, killing each child whose shutdown time has passed.
 * One loop, because a process may wait in one receive at a time; stopping
 * children one after another is this with a single victim.
 *
 * A child that exits with another reason than the one asked for is
 * reported, as OTP's `shutdown_error`.
 * @internal
 */
export async function shutdownChildren(self: Process, victims: readonly Victim[]): Promise<void> {
  if (victims.length === 0) return;
  const clock = self.node.clock;
  const now = clock.now();
  const pending = new Map<Ref, Pending>();
  for (const victim of victims) {
    const ref = self.monitor(victim.pid);
    self.unlink(victim.pid);
    const { shutdown } = victim.spec;
    self.exit(victim.pid, shutdown === 'brutal_kill' ? 'kill' : 'shutdown');
    const deadline = typeof shutdown === 'number' ? now + shutdown : Infinity;
    pending.set(ref, { victim, deadline });
  }
  const isOurs = (m: unknown): boolean => m instanceof DownMessage && pending.has(m.ref);
  while (pending.size > 0) {
    let next = Infinity;
    for (const p of pending.values()) if (p.deadline < next) next = p.deadline;
    const wait = next === Infinity ? undefined : Math.max(0, Math.ceil(next - clock.now()));
    const msg = await self.receive(isOurs, wait as number);
    if (msg === TIMEOUT) {
      const t = clock.now();
      for (const p of pending.values()) {
        if (p.deadline <= t) {
          p.deadline = Infinity;
          self.exit(p.victim.pid, 'kill');
        }
      }
      continue;
    }
    const down = msg as DownMessage;
    const p = pending.get(down.ref)!;
    pending.delete(down.ref);
    report(self, p.victim, down.reason);
  }
  // An EXIT that arrived before the unlink is stale now: the supervisor
  // must not take it for a crash to restart.
  const pids = victims.map((v) => v.pid);
  self._mailbox?.removeAll((m) => m instanceof ExitMessage && pids.some((pid) => pid.equals(m.from)));
}

function report(self: Process, victim: Victim, reason: unknown): void {
  const { shutdown } = victim.spec;
  const expected = shutdown === 'brutal_kill' ? 'killed' : 'shutdown';
  if (reason === expected || reason === 'noproc' || (reason === 'killed' && shutdown !== 'infinity')) return;
  self.node.logger.error(
    `supervisor ${self.pid}: child ${victim.label} ${victim.pid} shut down with reason ${formatReason(reason)}`,
  );
}
