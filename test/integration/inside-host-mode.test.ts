// The inside suite with containers in copies of the host's mount namespace and pivot_root: the
// fallback when the base namespace cannot be made. Each test file runs in a process of its own
// (vitest's forks pool), and the addon reads this when it spawns its first container.
import { insideSuite } from './inside-suite.js';

process.env.SCRATCHBOX_BASE_MNTNS = '0';
insideSuite('host');
