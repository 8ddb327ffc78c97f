/**
 * The child's side of the suite's IPC: answers the runner's requests, says
 * it is ready, and stops on SIGTERM or when the runner goes away.
 */
export type Handlers = Record<string, (msg: Record<string, unknown>) => unknown>;

export function serve(handlers: Handlers, ready: Record<string, unknown>, close: () => Promise<void>): void {
  process.on('message', (raw) => {
    const msg = raw as { id: number; type: string } & Record<string, unknown>;
    const handler = handlers[msg.type];
    if (handler === undefined) return;
    Promise.resolve()
      .then(() => handler(msg))
      .then(
        (value) => process.send?.({ re: msg.id, value }),
        (err: unknown) => process.send?.({ re: msg.id, error: (err as Error).message ?? String(err) }),
      );
  });
  let closing = false;
  const stop = (): void => {
    if (closing) return;
    closing = true;
    void close()
      .catch(() => undefined)
      .then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('disconnect', stop);
  process.send?.({ type: 'ready', ...ready, pid: process.pid });
}
