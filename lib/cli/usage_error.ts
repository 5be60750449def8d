/**
 * The error for a bad command line.
 * @module
 */

/** An unknown flag, a missing argument or a bad value (exit code 2). */
export class UsageError extends Error {
  override readonly name = "UsageError";
  /** Makes the error. */
  constructor(message: string) {
    super(message);
  }
}
