// The file-system isolation suite with containers in copies of the base mount namespace (the default).
import { hardeningSuite } from './hardening-suite.js';

hardeningSuite('base');
