import { initSuite } from './init-suite.js';

initSuite('base');
