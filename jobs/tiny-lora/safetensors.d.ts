// Types for safetensors.js (plain CommonJS so it runs in the trainer image without a build step).
export interface TensorIn {
  shape: number[];
  data: Float32Array | Float64Array | number[];
  dtype?: 'F32' | 'F64';
}
export interface TensorOut {
  dtype: string;
  shape: number[];
  data: Float32Array | Float64Array;
}
export function serialize(tensors: Record<string, TensorIn>, metadata?: Record<string, string>): Buffer;
export function deserialize(buf: Buffer): { tensors: Record<string, TensorOut>; metadata: Record<string, string> | null };
