// The shape every lowbit API uses for dense tensors (CONTRIBUTING.md): a flat typed array in
// row-major (C) order and its dimensions, outermost first. Packed encodings have their own types
// in @lowbit/formats.

export type TypedArray = Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array;

/** A dense tensor: `data.length` is the product of `shape`. */
export interface Tensor<T extends TypedArray = Float32Array> {
  data: T;
  shape: number[];
}

/** A dense row-major matrix [rows, cols] (weights are [out, in]). */
export interface Matrix<T extends TypedArray = Float32Array> {
  data: T;
  shape: [number, number];
}
