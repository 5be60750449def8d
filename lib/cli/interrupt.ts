/**
 * SIGINT and SIGTERM as an abort signal: the running command saves its state and the process exits 130.
 * @module
 */

/**
 * What a signal left behind: `saved` (the resume record holds what was verified, or there was nothing to keep yet),
 * `no-record` (the record could not be saved: the disk did not finish writing in time, or the record could not be
 * written) or `checking` (the signal came while the data already on disk was being checked: nothing of that check is
 * kept), or `verify` (a `verify` that was stopped: it changes nothing, so there is nothing to keep).
 */
export type InterruptedState = "saved" | "no-record" | "checking" | "verify";

const LINES: Record<InterruptedState, string> = {
  saved: "state saved, run the same command again to resume",
  "no-record": "no resume record was saved (see the warning above); run the same command again to resume (it checks " +
    "the data on disk first)",
  checking: "the data on disk was not fully checked, so nothing was saved; run the same command again to check it " +
    "and resume",
  verify: "the check was not finished",
};

/** The reason a command was aborted by a signal. */
export class Interrupted extends Error {
  override readonly name = "Interrupted";
  /** Makes the error for `signal`, its message saying what was kept ({@linkcode InterruptedState}). */
  constructor(readonly signal: string, readonly state: InterruptedState = "saved") {
    super(`Interrupted by ${signal}: ${LINES[state]}`);
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
