/** Writes dist/workerd/ (the worker and its @lowbit packages as workerd modules, and modules.capnp); returns its path. */
export function layOutModules(): string;
/** The workerd binary of the `workerd` npm package. */
export const workerdBin: string;
