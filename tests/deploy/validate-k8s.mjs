// Render every kustomize overlay with `kubectl kustomize` and validate each
// rendered object against the Kubernetes OpenAPI schemas, offline.
//
// Two maintained, published validators, both generated from the Kubernetes
// OpenAPI specification and shipped inside their npm packages (no network):
//   1. kubernetes-models (tommy351/kubernetes-models-ts): the JSON schema of
//      every built-in kind compiled to ajv validators: types, required
//      fields, enums, formats (int32, quantities, ...).
//   2. @kubernetes/client-node (kubernetes-client/javascript): the
//      attribute map of every model, used here to reject fields the API does
//      not know (a typo such as readOnlyRootFileSystem would otherwise pass,
//      and the API server would drop it silently).  The same check
//      kubeconform's -strict mode does.
//   3. @kubernetes-models/prometheus-operator (same project, generated from
//      the Prometheus Operator's Go API) for the monitoring.coreos.com kinds
//      of deploy/monitoring (PrometheusRule, PodMonitor): its ajv validators,
//      and, for unknown fields, the properties its type declarations
//      (.d.ts) give each model class, since client-node has no CRD models.
//
// Usage: node validate-k8s.mjs --kubectl PATH DIR [DIR...]
//        node validate-k8s.mjs --file FILE.yaml        (already rendered)
// Exit 0 when every object of every DIR is valid, 1 otherwise.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

// The validators come from tests/deploy/node_modules (npm ci --prefix
// tests/deploy); say so plainly when they are missing.
let parseAllDocuments, clientModels;
try {
  ({ parseAllDocuments } = await import("yaml"));
  clientModels = await import("@kubernetes/client-node/dist/gen/models/all.js");
  await import("kubernetes-models/v1");
} catch (e) {
  console.log(`FAIL validator packages missing (run: npm ci --prefix tests/deploy): ${e.message}`);
  console.log("0 passed, 1 failed");
  process.exit(1);
}

function parseArgs(argv) {
  const out = { kubectl: "kubectl", dirs: [], files: [] };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--kubectl") out.kubectl = argv[++i];
    else if (argv[i] === "--file") out.files.push(argv[++i]);
    else out.dirs.push(argv[i]);
  }
  return out;
}

// Custom resources with published models: API group -> npm package.
const CRD_PACKAGES = { "monitoring.coreos.com": "@kubernetes-models/prometheus-operator" };

function crdPackage(apiVersion) {
  return apiVersion.includes("/") ? CRD_PACKAGES[apiVersion.split("/")[0]] : undefined;
}

// "apps/v1" -> "kubernetes-models/apps/v1"; "v1" -> "kubernetes-models/v1";
// "monitoring.coreos.com/v1" PodMonitor ->
// "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor".
async function modelClass(apiVersion, kind) {
  let mod;
  const pkg = crdPackage(apiVersion);
  try {
    mod = await import(pkg ? `${pkg}/${apiVersion}/${kind}` : `kubernetes-models/${apiVersion}`);
  } catch {
    return null;
  }
  return mod[kind] ?? null;
}

// The properties a kubernetes-models class declares, from its .d.ts:
// { props: Map(name -> type text), imports: Map(type name -> .d.ts path) },
// or null when the file declares no model class (a type alias: a leaf).
const NODE_MODULES = join(dirname(fileURLToPath(import.meta.url)), "node_modules");
const dtsCache = new Map();
function dtsModel(file) {
  if (dtsCache.has(file)) return dtsCache.get(file);
  let model = null;
  const text = existsSync(file) ? readFileSync(file, "utf8") : "";
  const body = /export declare class \w+ extends Model<[^>]*>[^{]*\{([\s\S]*?)\n\s*constructor\(/.exec(text);
  if (body) {
    const imports = new Map();
    for (const m of text.matchAll(/import \{ (\w+) \} from "([^"]+)";/g)) {
      const spec = m[2].replace(/\.js$/, "");
      imports.set(m[1], spec.startsWith(".") ? join(dirname(file), `${spec}.d.ts`)
        : join(NODE_MODULES, `${spec}.d.ts`));
    }
    const props = new Map();
    const decls = [...body[1].matchAll(/^ {4}"([^"]+)"\??: /gm)];
    decls.forEach((m, i) => {
      const end = i + 1 < decls.length ? decls[i + 1].index : body[1].length;
      props.set(m[1], body[1].slice(m.index + m[0].length, end).replace(/\s+/g, " ").replace(/;\s*(static[\s\S]*)?$/, "").trim());
    });
    model = { props, imports };
  }
  dtsCache.set(file, model);
  return model;
}

// Walk value against the type `type` (text from a .d.ts) declared in the
// file `file`; report every key its model class does not declare.
function dtsUnknownFields(value, type, file, path, errors) {
  if (value === null || typeof value !== "object") return;
  let m = /^Array<(.+)>$/.exec(type);
  if (m) {
    if (Array.isArray(value)) value.forEach((v, i) => dtsUnknownFields(v, m[1], file, `${path}/${i}`, errors));
    return;
  }
  m = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (m) {
    for (const [k, v] of Object.entries(value)) dtsUnknownFields(v, m[1], file, `${path}/${k}`, errors);
    return;
  }
  const target = dtsModel(file)?.imports.get(type);
  const model = target ? dtsModel(target) : null;
  if (!model || Array.isArray(value)) return;
  for (const [k, v] of Object.entries(value)) {
    if (!model.props.has(k)) errors.push(`${path}/${k}: unknown field (not in ${type.replace(/^I(ComGithub\w+MonitoringV1|IoK8s\w+V1)/, "")})`);
    else dtsUnknownFields(v, model.props.get(k), target, `${path}/${k}`, errors);
  }
}

// The unknown-field check of a custom resource: its top-level model's
// declared properties, then down through each declared type.
function crdUnknownFields(obj, pkg, errors) {
  const file = join(NODE_MODULES, pkg, obj.apiVersion, `${obj.kind}.d.ts`);
  const model = dtsModel(file);
  if (!model) {
    errors.push(`${obj.apiVersion} ${obj.kind}: no model declaration for unknown-field check`);
    return;
  }
  for (const [k, v] of Object.entries(obj)) {
    if (!model.props.has(k)) errors.push(`/${k}: unknown field`);
    else dtsUnknownFields(v, model.props.get(k), file, `/${k}`, errors);
  }
}

// client-node names models <Version><Kind> (V1Deployment) and, where two
// groups share a kind, <Group><Version><Kind> (EventsV1Event).
function clientModelName(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["core", apiVersion];
  const ver = version.charAt(0).toUpperCase() + version.slice(1);
  const groupName = group
    .split(".")[0]
    .split("-")
    .map((s) => s.charAt(0).toUpperCase() + s.slice(1))
    .join("");
  for (const name of [`${ver}${kind}`, `${groupName}${ver}${kind}`]) {
    if (typeof clientModels[name]?.getAttributeTypeMap === "function") return name;
  }
  return null;
}

const PRIMITIVES = new Set(["string", "number", "boolean", "Date", "any", "object", "IntOrString"]);

// Walk `value` against the client-node model `type`; report every key the
// model does not declare.
function unknownFields(value, type, path, errors) {
  if (value === null || value === undefined || PRIMITIVES.has(type)) return;
  let m = /^Array<(.+)>$/.exec(type);
  if (m) {
    if (Array.isArray(value)) value.forEach((v, i) => unknownFields(v, m[1], `${path}/${i}`, errors));
    return;
  }
  m = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (m) {
    if (typeof value === "object") for (const [k, v] of Object.entries(value)) unknownFields(v, m[1], `${path}/${k}`, errors);
    return;
  }
  const model = clientModels[type];
  if (typeof model?.getAttributeTypeMap !== "function" || typeof value !== "object" || Array.isArray(value)) return;
  const attrs = new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  for (const [k, v] of Object.entries(value)) {
    if (!attrs.has(k)) errors.push(`${path}/${k}: unknown field (not in ${type})`);
    else unknownFields(v, attrs.get(k), `${path}/${k}`, errors);
  }
}

async function validateObject(obj) {
  const errors = [];
  const { apiVersion, kind } = obj ?? {};
  if (typeof apiVersion !== "string" || typeof kind !== "string") return ["missing apiVersion or kind"];
  const Model = await modelClass(apiVersion, kind);
  if (!Model) return [`${apiVersion} ${kind}: no schema for this kind (not a built-in Kubernetes API)`];
  try {
    new Model(obj).validate();
  } catch (e) {
    errors.push(...String(e.message).split(/, (?=data)/).map((s) => s.replace(/^data/, "")));
  }
  const pkg = crdPackage(apiVersion);
  if (pkg) {
    crdUnknownFields(obj, pkg, errors);
    return errors;
  }
  const clientName = clientModelName(apiVersion, kind);
  if (!clientName) errors.push(`${apiVersion} ${kind}: no client-node model for unknown-field check`);
  else unknownFields(obj, clientName, "", errors);
  return errors;
}

function render(kubectl, dir) {
  return execFileSync(kubectl, ["kustomize", dir], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

async function validateText(label, text) {
  let failures = 0;
  let count = 0;
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length) {
      console.log(`FAIL ${label}: YAML: ${doc.errors[0].message}`);
      failures++;
      continue;
    }
    const obj = doc.toJS();
    if (obj === null) continue;
    count++;
    const name = `${obj.kind}/${obj.metadata?.namespace ?? "-"}/${obj.metadata?.name}`;
    const errors = await validateObject(obj);
    if (errors.length) {
      failures++;
      console.log(`FAIL ${label}: ${name}`);
      for (const e of errors) console.log(`       ${e}`);
    } else {
      console.log(`ok   ${label}: ${name}`);
    }
  }
  if (count === 0) {
    console.log(`FAIL ${label}: rendered no object`);
    failures++;
  }
  return { count, failures };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.dirs.length === 0 && args.files.length === 0) {
    console.error("usage: validate-k8s.mjs --kubectl PATH DIR [DIR...] | --file FILE");
    process.exit(2);
  }
  let total = 0;
  let failed = 0;
  for (const dir of args.dirs) {
    let text;
    try {
      text = render(args.kubectl, dir);
    } catch (e) {
      console.log(`FAIL ${dir}: kubectl kustomize failed:\n${e.stderr ?? e.message}`);
      failed++;
      continue;
    }
    const r = await validateText(dir, text);
    total += r.count;
    failed += r.failures;
  }
  for (const file of args.files) {
    const r = await validateText(file, readFileSync(file, "utf8"));
    total += r.count;
    failed += r.failures;
  }
  console.log(`${total - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

await main();
