#!/usr/bin/env node
// Committed shim so `npm ci` can link the `lowbit` command before `prepare` has built dist/.
import '../dist/bin.js';
