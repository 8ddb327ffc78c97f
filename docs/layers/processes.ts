/**
 * Nodes, processes and their mailboxes, links, monitors, exit signals, registered names, timers and clocks: the runtime everything else is built on.
 * @module Processes
 */
export {
  Node,
  Pid,
  Ref,
  Process,
  TIMEOUT,
  ExitMessage,
  DownMessage,
  NodeDownMessage,
  isExit,
  isDown,
  isNodeDown,
  ManualClock,
  systemClock,
  systemWallClock,
} from '../../lib/index.js';
export type {
  NodeOptions,
  SpawnOptions,
  ProcessInfo,
  Logger,
  ProcessBody,
  Matcher,
  ProcessBehaviour,
  Timeout,
  RegisteredName,
  Clock,
  ClockTimer,
  WallClock,
} from '../../lib/index.js';
