// The safety suite with containers in copies of the base mount namespace (the default).
import { safetySuite } from './safety-suite.js';

safetySuite('base');
