/**
 * The OCI image-spec (and Docker schema 2) documents we read and write: descriptors, manifests,
 * indexes, the image config, and references. Pure: validated shapes in, typed values out.
 */
import { arch as hostArch } from 'node:os';
import { imageError, isDigest } from './util.js';

export const MEDIA = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
} as const;

const MANIFEST_TYPES: readonly string[] = [MEDIA.ociManifest, MEDIA.dockerManifest];
const INDEX_TYPES: readonly string[] = [MEDIA.ociIndex, MEDIA.dockerList];
const LAYER_TYPES: readonly string[] = [MEDIA.ociLayer, MEDIA.ociLayerGzip, MEDIA.ociLayerZstd, MEDIA.dockerLayer, MEDIA.dockerLayerGzip];
/** Everything a registry may answer for a manifest request, for the Accept header. */
export const MANIFEST_ACCEPT = [...MANIFEST_TYPES, ...INDEX_TYPES].join(', ');

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
}

export interface Manifest {
  schemaVersion: 2;
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface Index {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/** What a container needs from an image's config (the OCI config's `config` object, renamed). */
export interface ImageConfig {
  entrypoint: string[];
  cmd: string[];
  /** "NAME=value" strings, as in the image. */
  env: string[];
  workingDir: string;
  user: string;
  labels: Record<string, string>;
}

/** The image config document (application/vnd.oci.image.config.v1+json), the parts we use. */
export interface ConfigDoc {
  architecture: string;
  os: string;
  created?: string;
  config?: {
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    Env?: string[] | null;
    WorkingDir?: string;
    User?: string;
    Labels?: Record<string, string> | null;
    [k: string]: unknown;
  };
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: unknown[];
  [k: string]: unknown;
}

function fail(what: string, msg: string): never {
  throw imageError('ERR_IMAGE_FORMAT', `${what}: ${msg}`);
}

function obj(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(what, 'not a JSON object');
  return v as Record<string, unknown>;
}

function strings(v: unknown, what: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) fail(what, 'not an array of strings');
  return v as string[];
}

export function parseDescriptor(v: unknown, what: string): Descriptor {
  const d = obj(v, what);
  if (typeof d.mediaType !== 'string') fail(what, 'mediaType is missing');
  if (!isDigest(d.digest)) fail(what, `digest ${JSON.stringify(d.digest)} is not a sha256 digest`);
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) fail(what, 'size is not a non-negative integer');
  const out: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (d.annotations !== undefined) out.annotations = obj(d.annotations, `${what}.annotations`) as Record<string, string>;
  if (d.platform !== undefined) {
    const p = obj(d.platform, `${what}.platform`);
    if (typeof p.os !== 'string' || typeof p.architecture !== 'string') fail(`${what}.platform`, 'os or architecture missing');
    out.platform = { os: p.os, architecture: p.architecture, ...(typeof p.variant === 'string' ? { variant: p.variant } : {}) };
  }
  return out;
}

/** Tells a manifest from an index by mediaType, or by shape when mediaType is absent (allowed by OCI). */
export function documentKind(doc: unknown, mediaType?: string): 'manifest' | 'index' {
  const o = obj(doc, 'manifest');
  const mt = typeof o.mediaType === 'string' ? o.mediaType : mediaType;
  if (mt !== undefined && MANIFEST_TYPES.includes(mt)) return 'manifest';
  if (mt !== undefined && INDEX_TYPES.includes(mt)) return 'index';
  if (Array.isArray(o.manifests)) return 'index';
  if (o.config !== undefined && Array.isArray(o.layers)) return 'manifest';
  return fail('manifest', `unsupported media type ${JSON.stringify(mt)}`);
}

export function parseManifest(doc: unknown, what = 'manifest'): Manifest {
  const o = obj(doc, what);
  if (o.schemaVersion !== 2) fail(what, `schemaVersion ${JSON.stringify(o.schemaVersion)} is not 2`);
  if (!Array.isArray(o.layers)) fail(what, 'layers is not an array');
  const layers = o.layers.map((l, i) => parseDescriptor(l, `${what}.layers[${i}]`));
  layers.forEach((l, i) => {
    if (!LAYER_TYPES.includes(l.mediaType)) fail(`${what}.layers[${i}]`, `unsupported layer media type ${l.mediaType} (foreign or encrypted layers are not supported)`);
  });
  return {
    schemaVersion: 2,
    mediaType: typeof o.mediaType === 'string' ? o.mediaType : MEDIA.ociManifest,
    config: parseDescriptor(o.config, `${what}.config`),
    layers,
    ...(o.annotations === undefined ? {} : { annotations: obj(o.annotations, `${what}.annotations`) as Record<string, string> }),
  };
}

export function parseIndex(doc: unknown, what = 'index'): Index {
  const o = obj(doc, what);
  if (o.schemaVersion !== 2) fail(what, `schemaVersion ${JSON.stringify(o.schemaVersion)} is not 2`);
  if (!Array.isArray(o.manifests)) fail(what, 'manifests is not an array');
  return {
    schemaVersion: 2,
    ...(typeof o.mediaType === 'string' ? { mediaType: o.mediaType } : {}),
    manifests: o.manifests.map((m, i) => parseDescriptor(m, `${what}.manifests[${i}]`)),
    ...(o.annotations === undefined ? {} : { annotations: obj(o.annotations, `${what}.annotations`) as Record<string, string> }),
  };
}

export function parseConfig(doc: unknown, what = 'image config'): ConfigDoc {
  const o = obj(doc, what);
  const rootfs = obj(o.rootfs, `${what}.rootfs`);
  const diffIds = strings(rootfs.diff_ids, `${what}.rootfs.diff_ids`);
  diffIds.forEach((d, i) => isDigest(d) || fail(`${what}.rootfs.diff_ids[${i}]`, `${JSON.stringify(d)} is not a sha256 digest`));
  if (o.config !== undefined && o.config !== null) {
    const c = obj(o.config, `${what}.config`);
    strings(c.Entrypoint, `${what}.config.Entrypoint`);
    strings(c.Cmd, `${what}.config.Cmd`);
    strings(c.Env, `${what}.config.Env`);
  }
  return o as unknown as ConfigDoc;
}

/** The container-facing view of a config document. */
export function imageConfig(doc: ConfigDoc): ImageConfig {
  const c = doc.config ?? {};
  return {
    entrypoint: c.Entrypoint ?? [],
    cmd: c.Cmd ?? [],
    env: c.Env ?? [],
    workingDir: c.WorkingDir || '/',
    user: c.User ?? '',
    labels: c.Labels ?? {},
  };
}

/** Node's process.arch in the GOARCH words images use. */
export function hostPlatform(nodeArch: string = hostArch()): Platform {
  const map: Record<string, Platform> = {
    x64: { os: 'linux', architecture: 'amd64' },
    arm64: { os: 'linux', architecture: 'arm64', variant: 'v8' },
    arm: { os: 'linux', architecture: 'arm', variant: 'v7' },
    ia32: { os: 'linux', architecture: '386' },
    ppc64: { os: 'linux', architecture: 'ppc64le' },
    s390x: { os: 'linux', architecture: 's390x' },
    riscv64: { os: 'linux', architecture: 'riscv64' },
  };
  return map[nodeArch] ?? { os: 'linux', architecture: nodeArch };
}

/**
 * Picks the manifest for a platform from an index: os and architecture must match; among those,
 * the wanted variant, then one without a variant. Attestation manifests (unknown/unknown) never match.
 * An index whose entries have no platform at all (a single-image OCI layout) gives its only entry.
 */
export function pickManifest(index: Index, want: Platform = hostPlatform()): Descriptor {
  const candidates = index.manifests.filter((m) => MANIFEST_TYPES.includes(m.mediaType) || INDEX_TYPES.includes(m.mediaType));
  const withPlatform = candidates.filter((m) => m.platform);
  if (withPlatform.length === 0 && candidates.length === 1) return candidates[0]!;
  const same = withPlatform.filter((m) => m.platform!.os === want.os && m.platform!.architecture === want.architecture);
  const best =
    same.find((m) => m.platform!.variant === want.variant) ??
    same.find((m) => m.platform!.variant === undefined) ??
    same[0];
  if (best) return best;
  const have = withPlatform.map((m) => `${m.platform!.os}/${m.platform!.architecture}${m.platform!.variant ? `/${m.platform!.variant}` : ''}`);
  throw imageError('ERR_IMAGE_PLATFORM', `no manifest for ${want.os}/${want.architecture} in the index (it has: ${have.join(', ') || 'nothing with a platform'})`);
}

/** A parsed image reference: registry host, repository path, and a tag or a digest (or both). */
export interface Reference {
  registry: string;
  repository: string;
  tag?: string;
  digest?: string;
}

const DOCKER_HUB = 'docker.io';
const NAME_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/**
 * Parses `[host[:port]/]path[:tag][@sha256:…]`, the docker way: the first component is a
 * registry host when it has a dot or a colon or is `localhost`; Docker Hub names get `library/`.
 */
export function parseReference(ref: string): Reference {
  const bad = (why: string): never => {
    throw imageError('EINVAL', `invalid image reference ${JSON.stringify(ref)}: ${why}`, { option: 'ref' });
  };
  if (typeof ref !== 'string' || ref.length === 0 || ref.length > 4096) bad('empty or too long');
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(digest)) bad('the digest is not sha256:<64 hex digits>');
  }
  let tag: string | undefined;
  const lastColon = rest.lastIndexOf(':');
  if (lastColon > rest.lastIndexOf('/')) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!TAG_RE.test(tag)) bad(`tag ${JSON.stringify(tag)}`);
  }
  const parts = rest.split('/');
  let registry = DOCKER_HUB;
  if (parts.length > 1 && (parts[0]!.includes('.') || parts[0]!.includes(':') || parts[0] === 'localhost')) registry = parts.shift()!;
  if (!/^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::\d{1,5})?$/.test(registry)) bad(`registry host ${JSON.stringify(registry)}`);
  if (parts.length === 0 || parts.some((p) => !NAME_COMPONENT.test(p))) bad('the repository path must be lower-case name components separated by /');
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift('library');
  if (tag === undefined && digest === undefined) tag = 'latest';
  return { registry, repository: parts.join('/'), ...(tag === undefined ? {} : { tag }), ...(digest === undefined ? {} : { digest }) };
}

/** The canonical text of a reference (what the store keys pulled images by). */
export function formatReference(r: Reference): string {
  return `${r.registry}/${r.repository}${r.tag === undefined ? '' : `:${r.tag}`}${r.digest === undefined ? '' : `@${r.digest}`}`;
}

/**
 * How a local ref (`sleep:latest`, `localhost/x:1`) is keyed in the store: as written (after
 * checking it parses), with `:latest` added when it has neither a tag nor a digest.
 */
export function normalizeLocalRef(ref: string): string {
  parseReference(ref);
  const name = ref.split('@')[0]!;
  return ref.includes('@') || name.lastIndexOf(':') > name.lastIndexOf('/') ? ref : `${ref}:latest`;
}
