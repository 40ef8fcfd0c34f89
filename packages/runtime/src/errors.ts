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
