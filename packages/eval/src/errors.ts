/**
 * A setting that cannot work: an unknown policy or preset, a window longer than the text, a context the model does
 * not have. Thrown before any measuring, so an application can report it as the caller's mistake (the CLI: a usage
 * error, exit code 2).
 */
export class SettingsError extends Error {
  override readonly name = 'SettingsError';
}

/** How an error names a setting; applications pass their own spelling (the CLI: `--decode-target`). */
export type SettingName = (setting: string) => string;

export const ownName: SettingName = (setting) => setting;
