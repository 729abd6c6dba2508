// The file-system isolation suite in the fallback mode: copies of the host's mount namespace and pivot_root.
import { hardeningSuite } from './hardening-suite.js';

process.env.SCRATCHBOX_BASE_MNTNS = '0';
hardeningSuite('host');
