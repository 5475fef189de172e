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
//
// Usage: node validate-k8s.mjs --kubectl PATH DIR [DIR...]
//        node validate-k8s.mjs --file FILE.yaml        (already rendered)
// Exit 0 when every object of every DIR is valid, 1 otherwise.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

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

// "apps/v1" -> "kubernetes-models/apps/v1"; "v1" -> "kubernetes-models/v1".
async function modelClass(apiVersion, kind) {
  let mod;
  try {
    mod = await import(`kubernetes-models/${apiVersion}`);
  } catch {
    return null;
  }
  return mod[kind] ?? null;
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
