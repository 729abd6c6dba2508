// Exec into a running container whose root was entered with pivot_root in a copy of the host's
// mount namespace (the fallback). The addon reads this when it spawns its first container.
import { execSuite } from './exec-suite.js';

process.env.SCRATCHBOX_BASE_MNTNS = '0';
execSuite('host');
