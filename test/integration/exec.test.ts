// Exec into a running container, the root in a copy of the base mount namespace (the default).
import { execSuite } from './exec-suite.js';

execSuite('base');
