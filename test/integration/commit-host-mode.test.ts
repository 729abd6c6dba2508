// keep and commit() in the fallback mode: copies of the host's mount namespace and pivot_root
// (root-upper-dir attaches the kept directory on the rootfs at once). Each test file runs in a
// process of its own, and the addon reads this when it spawns its first container.
import { commitSuite } from './commit-suite.js';

process.env.SCRATCHBOX_BASE_MNTNS = '0';
commitSuite('host');
