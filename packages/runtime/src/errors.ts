import { SnapshotError, type SnapshotErrorReason } from '@semanticache/kv-cache';

/** A checkpoint, tokenizer or config could not be loaded; names the file and, where known, the tensor. */
export class ModelLoadError extends Error {
  override name = 'ModelLoadError';
  readonly file: string | undefined;
  readonly tensor: string | undefined;
  constructor(message: string, options: { file?: string; tensor?: string; cause?: unknown } = {}) {
    const where = [options.file && `file ${options.file}`, options.tensor && `tensor ${options.tensor}`]
      .filter(Boolean)
      .join(', ');
    super(
      where ? `${message} (${where})` : message,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.file = options.file;
    this.tensor = options.tensor;
  }
}

/** The prompt plus the requested generation would run past the model's context window. */
export class ContextOverflowError extends RangeError {
  override name = 'ContextOverflowError';
}

/** A session or model was used after `dispose()`. */
export class DisposedError extends Error {
  override name = 'DisposedError';
}

/** A call on a session while another call on it (e.g. a generation) is still running. */
export class SessionBusyError extends Error {
  override name = 'SessionBusyError';
}

/** An error as it crosses a thread boundary (worker threads post plain objects): its kind and what it names. */
export interface SerializedError {
  name: string;
  message: string;
  /** SnapshotError's reason */
  reason?: string;
  /** ModelLoadError's file and tensor */
  file?: string;
  tensor?: string;
}

export function serializeError(err: unknown): SerializedError {
  if (err instanceof SnapshotError) return { name: err.name, message: err.message, reason: err.reason };
  if (err instanceof ModelLoadError)
    return { name: err.name, message: err.message, file: err.file, tensor: err.tensor };
  return err instanceof Error ? { name: err.name, message: err.message } : { name: 'Error', message: String(err) };
}

const ERROR_TYPES: Record<string, new (message: string) => Error> = {
  ContextOverflowError,
  DisposedError,
  SessionBusyError,
  TypeError,
  RangeError,
};

/** The error {@link serializeError} describes, of the same class where it is one of the runtime's or a built-in. */
export function deserializeError(e: SerializedError): Error {
  if (e.name === 'SnapshotError') {
    const err = new SnapshotError(e.reason as SnapshotErrorReason, '');
    err.message = e.message;
    return err;
  }
  if (e.name === 'ModelLoadError') {
    // the message already names the file and tensor; keep them as fields too
    const err = new ModelLoadError('');
    return Object.assign(err, { message: e.message, file: e.file, tensor: e.tensor });
  }
  if (e.name === 'AbortError') return new DOMException(e.message, 'AbortError');
  const Ctor = ERROR_TYPES[e.name];
  const err = Ctor ? new Ctor(e.message) : new Error(e.message);
  if (!Ctor) err.name = e.name;
  return err;
}
