import { defineConfig } from 'tsup';
import { inlineInternal, packageBuild } from '../../tsup.preset.ts';

// The reference is its own entry so that it can be imported without the native addon.
export default defineConfig({ ...packageBuild, ...inlineInternal, entry: ['src/index.ts', 'src/reference.ts'] });
