import { defineConfig } from 'tsup';
import { inlineInternal, packageBuild } from '../../tsup.preset.ts';

export default defineConfig({ ...packageBuild, ...inlineInternal });
