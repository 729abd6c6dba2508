// The init suite with containers in copies of the host's mount namespace and pivot_root (see
// inside-host-mode.test.ts).
import { initSuite } from './init-suite.js';

process.env.SCRATCHBOX_BASE_MNTNS = '0';
initSuite('host');
