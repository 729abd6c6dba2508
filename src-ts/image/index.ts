/**
 * Images: a content-addressed store (blobs, one unpacked directory per layer, refs), import of
 * docker save / OCI archives and layouts, pull from OCI registries, FROM-scratch builds, export.
 * See docs/images.md. Container.create({ image }) runs them through store.resolve().
 */
export { Image, ImageStore, defaultStoreDir } from './store.js';
export type { ExportFormat, ImageProgress, ImportOptions, LayerInfo, ProgressFn, ResolvedImage, StoreOptions } from './store.js';
export { ScratchBuilder } from './builder.js';
export { imageProcess, resolveImageUser } from './process.js';
export type { ImageProcess, ImageProcessOptions } from './process.js';
export type { CopyOptions } from './builder.js';
export type { PullOptions, RegistryAuth } from './registry.js';
export { hostPlatform, parseReference, MEDIA } from './oci.js';
export type { Descriptor, ImageConfig, Index, Manifest, Platform, Reference } from './oci.js';
