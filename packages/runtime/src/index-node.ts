// @lowbit/runtime under Node (and `@lowbit/runtime/node`): everything the universal entry exports,
// the functions that take file paths, and Node's file functions installed for the loaders and writers
// that accept a path (loadModel(path), readGguf(path), writeGguf, saveModel, loadHfModel, ...).
import './file-system-node.js';

export * from './index.js';
export { fileSource } from './byte-source.js';
export { writeFileAtomic, writeTextAtomic, removeStaleTemps } from './atomic-file.js';
export { readNpy, writeNpy } from './npy-file.js';
