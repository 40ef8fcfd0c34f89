// Runs before every test file: its temporary folders go once the file is done (after the file's own hooks, which
// stop the servers and redis processes writing into them).
import { afterAll } from 'vitest';
import { removeTempDirs } from './test-support.js';

afterAll(removeTempDirs);
