// workerd's Data modules (and wrangler's `Data` rule in wrangler.toml) import a file's bytes as an ArrayBuffer.
declare module '*.gguf' {
  const bytes: ArrayBuffer;
  export default bytes;
}
