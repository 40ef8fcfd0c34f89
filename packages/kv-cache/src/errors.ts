/** Why a snapshot was rejected. */
export type SnapshotErrorReason =
  | 'bad-magic'
  | 'unsupported-version'
  | 'invalid-header'
  | 'truncated'
  | 'trailing-bytes'
  | 'checksum-mismatch'
  | 'shape-mismatch'
  | 'unsupported-platform';

/** A snapshot could not be read; the cache it was meant for is left untouched. */
export class SnapshotError extends Error {
  override readonly name = 'SnapshotError';
  constructor(
    readonly reason: SnapshotErrorReason,
    message: string,
  ) {
    super(`snapshot rejected (${reason}): ${message}`);
  }
}

/** A policy that scores entries was called without the attention mass it needs. */
export class MissingImportanceError extends TypeError {
  override readonly name = 'MissingImportanceError';
}
