/**
 * WTD: Erlang/OTP's processes, supervisors and behaviours for Node.js.
 *
 * Everything a program uses is exported here by name.
 * @module wtd
 */
import './missions/reflect-metadata.js';

// Errors
export {
  WtdError,
  NoProcError,
  CallTimeoutError,
  CallingSelfError,
  ServerExitError,
  BadReturnValueError,
  StartError,
  NameError,
  SupervisorError,
  GenEventError,
  MissionError,
  NotSerializableError,
  WireError,
  NodeDownError,
  RemoteError,
  MaybeRanError,
  outcomeOf,
  RateLimitedError,
  ProxyRefusal,
  DataDirLockedError,
  CommandError,
  formatReason,
} from './errors.js';
export type { WtdErrorOptions, CallOutcome } from './errors.js';
export { ERROR_CODES, isErrorCode } from './error-codes.js';
export type { ErrorCode } from './error-codes.js';

// Runtime
export { Node } from './runtime/node.js';
export type { NodeOptions, SpawnOptions, ProcessInfo, Logger } from './runtime/node.js';
export { Pid, Ref } from './runtime/pid.js';
export { Process } from './runtime/process.js';
export type { ProcessBody, Matcher, ProcessBehaviour } from './runtime/process.js';
export { TIMEOUT, ExitMessage, DownMessage, NodeDownMessage, isExit, isDown, isNodeDown } from './runtime/messages.js';
export type { Timeout, RegisteredName } from './runtime/messages.js';
export { ManualClock, systemClock, systemWallClock } from './runtime/clock.js';
export type { Clock, ClockTimer, WallClock } from './runtime/clock.js';

// Behaviours
export { DEFAULT_CALL_TIMEOUT, CallSlot } from './behaviours/gen.js';
export type { ServerRef, StartOptions, StartWhere } from './behaviours/gen.js';
export {
  Ok,
  Ignore,
  Reply,
  NoReply,
  Stop,
  ok,
  ignore,
  reply,
  noreply,
  stop,
  stopAndReply,
} from './behaviours/results.js';
export type { After } from './behaviours/results.js';
export { GenServer } from './behaviours/gen-server.js';
export { RequestId, RequestIds } from './behaviours/requests.js';
export type { Response, LabelledResponse } from './behaviours/requests.js';
export type { MultiCallResult } from './behaviours/server-client.js';
export { Sys } from './behaviours/sys.js';
export type { ServerStatus } from './behaviours/sys.js';
export type { From, InitResult, CallResult, NoReplyResult } from './behaviours/gen-server.js';
export { Supervisor } from './behaviours/supervisor.js';
export type { ChildInfo, ChildCounts } from './behaviours/supervisor.js';
export { SUPERVISOR_DEFAULTS } from './behaviours/child-spec.js';
export type {
  AutoShutdown,
  StartedChild,
  ChildSpec,
  ChildType,
  RestartType,
  Shutdown,
  Strategy,
  SupervisorFlags,
  SupervisorSpec,
} from './behaviours/child-spec.js';
export { GenEvent, GenEventHandler, GenEventExit, RemoveHandler, removeHandler } from './behaviours/gen-event.js';
export { GenFsm, NextState, ReplyState, TimerEvent, nextState, replyState } from './behaviours/gen-fsm.js';
export type { FsmResult } from './behaviours/gen-fsm.js';
export { GenStatem } from './behaviours/gen-statem.js';
export type { CallbackMode, StatemResult } from './behaviours/gen-statem.js';
export {
  KeepState,
  ReplyAction,
  Postpone,
  NextEvent,
  TimeoutAction,
  keepState,
  keepStateAndData,
  repeatState,
  repeatStateAndData,
  replyTo,
  postpone,
  nextEvent,
  eventTimeout,
  stateTimeout,
  genericTimeout,
} from './behaviours/statem-actions.js';
export type { EventType, StatemAction } from './behaviours/statem-actions.js';

// Wire
export { WireCodec } from './wire/codec.js';
export type { BilletDoux, PidHooks, Encoded, CodecLimits } from './wire/codec.js';

// Missions
export { WtdExport, WtdBehaviour } from './missions/decorators.js';
export { MissionTable, missionTable } from './missions/mission-table.js';
export { BEHAVIOUR_OPS, BEHAVIOUR_OP_TABLE } from './missions/behaviour-ops.js';
export type { BehaviourKind, BehaviourOp, CamelCase } from './missions/behaviour-ops.js';
export type {
  ExportedFunction,
  ExposedBehaviour,
  MissionEntry,
  LoadOptions,
  AnyClass,
  Catalogued,
} from './missions/mission-table.js';
export type { Arity } from './missions/arity.js';
export type { ExportOptions } from './missions/decorators.js';

// Security
export { SqliteGrantStore } from './security/sqlite-store.js';
export type { GrantStore, GrantRecord, RateLimit } from './security/grant-store.js';
export type { ReplayLog, RequestOutcome } from './security/replay-window.js';
export { parseRate } from './security/rate-limiter.js';

// Transport
export { WtdNode } from './transport/wtd-node.js';
export type { WtdNodeOptions, RateState } from './transport/node-options.js';
export type { GrantOptions, GrantFile } from './transport/grant-issuer.js';
export type { ConnectOptions, ConnectTarget } from './transport/connect.js';
export type { ContactCard } from './transport/contact-card.js';
export type { JoinOptions } from './transport/proxy-client.js';
export type { DirectoryEntry } from './wire/relay.js';
export type { ServerLimits } from './transport/server.js';
export type { OutboxLimits, OutboxStats } from './transport/outbox.js';
export type { SessionLimits } from './security/sessions.js';
export type { ConnectionLimits } from './security/connection-guard.js';
export type { Refusal } from './transport/refusal-log.js';
export { RemoteNode } from './transport/remote-node.js';
export type { RemoteCallOptions, BehaviourClient, ProbeReport } from './transport/remote-node.js';
export { MissionGroup } from './transport/group.js';
export type {
  GroupOptions,
  GroupCallOptions,
  GroupMember,
  GroupMulticallResult,
  GroupBehaviourClient,
} from './transport/group.js';
export type { PickStrategy } from './transport/group-pick.js';

// The proxy: registration, discovery and relay
export { WtdProxy, WtdProxy as Proxy } from './proxy/proxy.js';
export type { ProxyOptions, ProxyStatus, ProxyNodeStatus, StatusQuery } from './proxy/proxy.js';

// The wtd command's observer, for programs that run a node themselves
export { Observer } from './cli/observer.js';
export type { ObserverSnapshot, ObservedProcess, TreeNode } from './cli/observer.js';
