// runCommand with `spawn: 'direct'` (execa in this process, the way Windows always runs): the whole suite.
import { runCommandSuite } from './run-command-suite.ts';

runCommandSuite('direct');
