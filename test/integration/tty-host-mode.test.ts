// tty: true, the root entered with pivot_root in a copy of the host's mount namespace (the
// fallback). The addon reads this when it spawns its first container.
import { ttySuite } from './tty-suite.js';

process.env.SCRATCHBOX_BASE_MNTNS = '0';
ttySuite('host');
