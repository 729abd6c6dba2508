// The inside suite with containers in copies of the base mount namespace (the default).
import { insideSuite } from './inside-suite.js';

insideSuite('base');
