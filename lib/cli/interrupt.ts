/**
 * SIGINT and SIGTERM as an abort signal: the running command saves its state and the process exits 130.
 * @module
 */

/** The reason a command was aborted by a signal. */
export class Interrupted extends Error {
  override readonly name = "Interrupted";
  /** Makes the error for `signal`. */
  constructor(readonly signal: string) {
    super(`Interrupted by ${signal}: state saved, run the same command again to resume`);
  }
}

/** Aborts the returned controller on SIGINT or SIGTERM until `dispose` is called. */
export function onInterrupt(): { readonly signal: AbortSignal; dispose(): void } {
  const ctl = new AbortController();
  const handlers: [Deno.Signal, () => void][] = [];
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    const h = () => ctl.abort(new Interrupted(sig));
    try {
      Deno.addSignalListener(sig, h);
      handlers.push([sig, h]);
    } catch { /* not supported on this platform (SIGTERM on Windows) */ }
  }
  return {
    signal: ctl.signal,
    dispose() {
      for (const [sig, h] of handlers) Deno.removeSignalListener(sig, h);
    },
  };
}
