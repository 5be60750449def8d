/**
 * SIGINT and SIGTERM as an abort signal: the running command saves its state and the process exits 130.
 * @module
 */

/** The reason a command was aborted by a signal. */
export class Interrupted extends Error {
  override readonly name = "Interrupted";
  /**
   * Makes the error for `signal`. `recordSaved` false says that the session could not save its resume record (the
   * disk did not finish writing in time, or the record could not be written), so the next run checks the data on disk
   * before it resumes.
   */
  constructor(readonly signal: string, readonly recordSaved = true) {
    super(
      recordSaved
        ? `Interrupted by ${signal}: state saved, run the same command again to resume`
        : `Interrupted by ${signal}: no resume record was saved (see the warning above); run the same command again to ` +
          "resume (it checks the data on disk first)",
    );
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
