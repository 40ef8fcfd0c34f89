import { defineConfig } from 'tsup';
import { appBuild } from '../../tsup.preset.ts';

export default defineConfig(appBuild);
