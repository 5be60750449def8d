/**
 * Why a fetch or a seed ended without doing what was asked (as opposed to a bug).
 * @module
 */

/** Why the swarm could not deliver. */
export type FetchErrorCode = "timeout" | "stalled" | "no-peers" | "bad-data" | "incomplete" | "listen";

/**
 * The torrent could not be fetched: `timeout` (the `--timeout` ran out), `stalled` (no verified progress for
 * `--stall-timeout`), `no-peers` (no peer could be reached and no tracker gave any), `bad-data` (what peers sent
 * failed its hashes and nothing else could be had), `incomplete` (asked to seed data that is not all there), or
 * `listen` (the `--port` cannot be bound).
 */
export class FetchError extends Error {
  override readonly name = "FetchError";
  /** Makes the error. */
  constructor(readonly code: FetchErrorCode, message: string) {
    super(message);
  }
}
