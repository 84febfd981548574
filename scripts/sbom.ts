// `npm run sbom`: CycloneDX 1.6 SBOM of what the install-cni image contains, written to build/sbom.cdx.json
// (a build output, never committed; the Dockerfile exports it with `--target sbom`). Run after
// `npm run build` and `npm run image:rootfs`. Three sources, one document:
//   - the npm packages bundled into the two executables: @cyclonedx/cyclonedx-npm over the production tree
//     (dev dependencies never reach the image);
//   - the bun runtime each executable embeds (`bun build --compile`), pinned by package-lock.json;
//   - the Debian packages whose files image:rootfs copied (build/rootfs.files.json: each file, its package and
//     version), as pkg:deb purls with the files they contribute as evidence, and those statically linked into the
//     launcher (glibc's libc.a, gcc's libgcc.a), with the launcher as a "statically linked" occurrence and a
//     dependency of its file component.
// Our executables and the launcher are listed as file components with their SHA-256, so the SBOM names every byte
// we built.
// The result is validated against the CycloneDX 1.6 schema before it is written.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';

const root = path.resolve(import.meta.dirname, '..');
const build = path.join(root, 'build');
const { values } = parseArgs({
  options: {
    files: { type: 'string', default: path.join(build, 'rootfs.files.json') },
    out: { type: 'string', default: path.join(build, 'sbom.cdx.json') },
  },
});
const filesJson = path.resolve(values.files);
const outFile = path.resolve(values.out);
if (!existsSync(filesJson)) throw new Error(`${filesJson} missing: run npm run image:rootfs first`);

interface FileRecord {
  path: string;
  source: string;
  package?: string | null;
  version?: string | null;
  /** Debian packages statically linked into this file (image-rootfs.ts). */
  linked?: Array<{ package: string; version: string }>;
}
type Json = Record<string, unknown>;

const npmSbom = outFile.replace(/(\.cdx)?\.json$/, '.npm.cdx.json');
execFileSync(
  path.join(root, 'node_modules', '.bin', 'cyclonedx-npm'),
  [
    '--omit',
    'dev',
    '--flatten-components',
    '--output-reproducible',
    '--spec-version',
    '1.6',
    '--output-format',
    'JSON',
    '--output-file',
    npmSbom,
    path.join(root, 'package.json'),
  ],
  { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] },
);
const bom = JSON.parse(readFileSync(npmSbom, 'utf8')) as {
  metadata: { component: Json; [key: string]: unknown };
  components: Json[];
  dependencies: Array<{ ref: string; dependsOn?: string[] }>;
  [key: string]: unknown;
};

const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
const lock = JSON.parse(readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, { version?: string; integrity?: string }>;
};
const app = bom.metadata.component;
const appRef = app['bom-ref'] as string;

// The image is the SBOM's subject; the application is one of its components.
const imageRef = `install-cni-image@${pkg.version}`;
bom.metadata.component = {
  type: 'container',
  'bom-ref': imageRef,
  name: 'install-cni',
  version: pkg.version,
  description: 'istio-cni node agent and CNI plugin image (scratch base)',
  licenses: [{ license: { id: 'Apache-2.0' } }],
};
const components: Json[] = [{ ...app, type: 'application' }, ...bom.components];

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');
const records = JSON.parse(readFileSync(filesJson, 'utf8')) as FileRecord[];
const executables: string[] = [];
// Each Debian package's own architecture (the build's, or `all` for ca-certificates and the like), in one query.
const debianNames = [
  ...new Set(
    records.flatMap((r) => [
      ...(r.package == null || r.package === 'istio-cni-node-ts' ? [] : [r.package]),
      ...(r.linked ?? []).map((linked) => linked.package),
    ]),
  ),
];
const debArch = new Map(
  execFileSync('dpkg-query', ['-W', '-f=${Package} ${Architecture}\\n', ...debianNames], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.split(' ') as [string, string]),
);
const debPurl = (name: string, version: string) => {
  const arch = debArch.get(name);
  if (arch === undefined) throw new Error(`dpkg-query does not know the Debian package ${name}`);
  return `pkg:deb/debian/${name}@${encodeURIComponent(version)}?arch=${arch}&distro=debian-12`;
};
/** Our files that carry Debian packages' code inside them (the static launcher): file ref → package purls. */
const staticallyLinked: Array<{ ref: string; dependsOn: string[] }> = [];
for (const record of records.filter((r) => r.package === 'istio-cni-node-ts')) {
  const ref = `file:${record.path}`;
  executables.push(ref);
  components.push({
    type: 'file',
    'bom-ref': ref,
    name: record.path,
    hashes: [{ alg: 'SHA-256', content: sha256(record.source) }],
  });
  if (record.linked !== undefined && record.linked.length > 0) {
    staticallyLinked.push({
      ref,
      dependsOn: record.linked.map((linked) => debPurl(linked.package, linked.version)),
    });
  }
}

const bunVersion = lock.packages['node_modules/bun']?.version;
if (bunVersion === undefined) throw new Error('bun is not in package-lock.json');
const bunRef = `pkg:npm/bun@${bunVersion}`;
components.push({
  type: 'application',
  'bom-ref': bunRef,
  name: 'bun',
  version: bunVersion,
  purl: bunRef,
  description: 'JavaScript runtime embedded in both executables by bun build --compile',
  licenses: [{ license: { id: 'MIT' } }],
});

// Debian packages, from the files image:rootfs copied and the code statically linked into ours.
const debian = new Map<string, { version: string; files: string[]; linkedInto: string[] }>();
const debianEntry = (name: string, version: string) => {
  const entry = debian.get(name) ?? { version, files: [], linkedInto: [] };
  debian.set(name, entry);
  return entry;
};
for (const record of records) {
  for (const linked of record.linked ?? []) {
    debianEntry(linked.package, linked.version).linkedInto.push(record.path);
  }
  if (record.package == null || record.package === 'istio-cni-node-ts') continue;
  debianEntry(record.package, record.version ?? '').files.push(record.path);
}
const debRefs: string[] = [];
for (const [name, { version, files, linkedInto }] of [...debian].sort(([a], [b]) => a.localeCompare(b))) {
  const purl = debPurl(name, version);
  debRefs.push(purl);
  components.push({
    type: 'library',
    'bom-ref': purl,
    name,
    version,
    purl,
    evidence: {
      occurrences: [
        ...files.map((location) => ({ location })),
        ...linkedInto.map((location) => ({ location, additionalContext: 'statically linked' })),
      ],
    },
  });
}
const generated = records.filter((r) => r.package == null).map((r) => r.path);

bom.components = components;
bom.dependencies = [
  { ref: imageRef, dependsOn: [appRef, bunRef, ...executables, ...debRefs] },
  { ref: appRef, dependsOn: bom.dependencies.find((d) => d.ref === appRef)?.dependsOn ?? [] },
  ...staticallyLinked,
  ...bom.dependencies.filter((d) => d.ref !== appRef),
];
bom.metadata['properties'] = [
  ...((bom.metadata['properties'] as Json[] | undefined) ?? []),
  { name: 'install-cni:generated-files', value: generated.join(',') },
];

// Validate against the CycloneDX 1.6 JSON schema with the library cyclonedx-npm itself uses (strict: unknown
// properties are errors) before anything is written.
const cyclonedx = createRequire(path.join(root, 'node_modules/@cyclonedx/cyclonedx-npm/package.json'))(
  '@cyclonedx/cyclonedx-library',
) as {
  Spec: { Version: Record<string, unknown> };
  Validation: { JsonStrictValidator: new (version: unknown) => { validate(text: string): Promise<unknown> } };
};
const text = `${JSON.stringify(bom, null, 2)}\n`;
const invalid = await new cyclonedx.Validation.JsonStrictValidator(cyclonedx.Spec.Version['v1dot6']).validate(
  text,
);
if (invalid !== null && invalid !== undefined) {
  throw new Error(`SBOM fails the CycloneDX 1.6 schema: ${JSON.stringify(invalid)}`);
}
writeFileSync(outFile, text);
console.log(
  `sbom: ${outFile} (${bom.components.length} components: ${debian.size} Debian packages, ` +
    `${components.filter((c) => typeof c['purl'] === 'string' && c['purl'].startsWith('pkg:npm/')).length} npm)`,
);
