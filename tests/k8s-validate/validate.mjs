// validate.mjs - schema validation of rendered Kubernetes objects, offline:
// each object (a multi-document YAML file, as `kubectl kustomize` prints it)
// against the OpenAPI schema of its apiVersion and kind, compiled into
// kubernetes-models (types, required fields, enums, formats).  It does not
// flag unknown fields (kubeconform's --strict would); tests/deploy_checks.sh
// checks the fields it relies on by name.
//
// Usage: node tests/k8s-validate/validate.mjs FILE.yaml
// Prints "ok   KIND NAME" or "FAIL KIND NAME: errors" per object; exits 1 if any failed.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

const docs = parseAllDocuments(readFileSync(process.argv[2], "utf8"))
  .map((d) => d.toJS())
  .filter(Boolean);
let failed = 0;
for (const o of docs) {
  const name = `${o.kind} ${o.metadata?.name ?? "?"}`;
  const [group, version] = String(o.apiVersion).includes("/") ? o.apiVersion.split("/") : [null, o.apiVersion];
  let Model;
  try {
    const mod = await import(`kubernetes-models/${group ? group + "/" : ""}${version}/${o.kind}`);
    Model = mod[o.kind];
  } catch (e) {
    Model = undefined;
  }
  if (!Model) {
    failed++;
    console.log(`FAIL ${name}: no schema for apiVersion ${o.apiVersion}, kind ${o.kind}`);
    continue;
  }
  try {
    new Model(o).validate();
    console.log(`ok   ${name} (${o.apiVersion})`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e.message}`);
  }
}
if (docs.length === 0) {
  console.log("FAIL no objects");
  failed++;
}
process.exit(failed ? 1 : 0);
