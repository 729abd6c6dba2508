// tty: true, the root in a copy of the base mount namespace (the default).
import { ttySuite } from './tty-suite.js';

ttySuite('base');
