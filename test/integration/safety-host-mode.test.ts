// The safety suite in the fallback mode: copies of the host's mount namespace and pivot_root.
import { safetySuite } from './safety-suite.js';

process.env.SCRATCHBOX_BASE_MNTNS = '0';
safetySuite('host');
