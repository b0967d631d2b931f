#!/usr/bin/env python3
"""k8s_render.py - render deploy/k8s as `kubectl kustomize` does, without kubectl.

  k8s_render.py DIR                 the objects of DIR/kustomization.yaml, as YAML, on stdout
  k8s_render.py DIR --compare FILE  also compare them with FILE (`kubectl kustomize DIR`'s
                                    output): exit 1 at the first difference

Debian 12 ships no kustomize, and its kubectl (kubernetes-client 1.20) embeds kustomize
v2, which rejects deploy/k8s (`envs:` and `labels:` came with kustomize v4).  So that the
deployment checks (tests/deploy_checks.sh) run everywhere, this script implements the part
of kustomize that deploy/k8s uses, with kustomize's semantics:

  resources          local YAML files, one or more objects each
  labels             pairs added to every object's metadata.labels (includeSelectors and
                     includeTemplates false, as deploy/k8s has them)
  configMapGenerator name + envs / literals: a ConfigMap named NAME-HASH (kustomize's
                     content hash), and every reference to NAME in a pod spec renamed
  images             name -> newName / newTag / digest in containers and initContainers

Anything else in a kustomization (another field, another option, a remote or directory
resource) is refused with a message naming it, never ignored: a kustomization this script
cannot render faithfully fails the check instead of passing it.  The output order is
kustomize's "legacy" order.  Where kubectl exists, deploy_checks.sh renders with both and
requires the same objects (--compare), which keeps this script honest.
Needs python3-yaml.
"""

import hashlib
import json
import os
import re
import sys

import yaml


class RenderError(Exception):
    pass


# ---------------------------------------------------------------------------
# kustomization.yaml
# ---------------------------------------------------------------------------

KNOWN_FIELDS = {"apiVersion", "kind", "resources", "labels", "configMapGenerator", "images"}


def refuse(what):
    raise RenderError("%s: not supported by tests/k8s_render.py (render it with a kubectl "
                      "whose kustomize knows it, or extend the script)" % what)


def check_keys(obj, allowed, where):
    if not isinstance(obj, dict):
        raise RenderError("%s: expected a mapping, got %r" % (where, obj))
    for k in obj:
        if k not in allowed:
            refuse("%s.%s" % (where, k))


def load_kustomization(d):
    path = os.path.join(d, "kustomization.yaml")
    if not os.path.isfile(path):
        raise RenderError("%s: no kustomization.yaml" % d)
    with open(path) as f:
        k = yaml.safe_load(f) or {}
    check_keys(k, KNOWN_FIELDS, "kustomization.yaml")
    if k.get("apiVersion", "kustomize.config.k8s.io/v1beta1") != "kustomize.config.k8s.io/v1beta1":
        refuse("kustomization.yaml apiVersion %s" % k["apiVersion"])
    if k.get("kind", "Kustomization") != "Kustomization":
        refuse("kustomization.yaml kind %s" % k["kind"])
    return k


# ---------------------------------------------------------------------------
# resources
# ---------------------------------------------------------------------------

def load_resources(d, names):
    objs = []
    for name in names or []:
        if not isinstance(name, str) or "://" in name or name.startswith("github.com/"):
            refuse("resource %r (remote)" % (name,))
        path = os.path.join(d, name)
        if os.path.isdir(path):
            refuse("resource %s (a directory: nested kustomizations)" % name)
        if not os.path.isfile(path):
            raise RenderError("resource %s: no such file" % name)
        with open(path) as f:
            docs = [o for o in yaml.safe_load_all(f) if o is not None]
        if not docs:
            raise RenderError("resource %s: no object in it" % name)
        for o in docs:
            check_object(o, name)
            objs.append(o)
    return objs


def check_object(o, where):
    if not isinstance(o, dict):
        raise RenderError("%s: an object is not a mapping" % where)
    for k in ("apiVersion", "kind"):
        if not isinstance(o.get(k), str) or not o[k]:
            raise RenderError("%s: an object without %s" % (where, k))
    name = (o.get("metadata") or {}).get("name")
    if not isinstance(name, str) or not name:
        raise RenderError("%s: a %s without metadata.name" % (where, o["kind"]))
    if "List" in o["kind"] and "items" in o:
        refuse("%s: a %s" % (where, o["kind"]))


# ---------------------------------------------------------------------------
# configMapGenerator
# ---------------------------------------------------------------------------

ENV_KEY = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def env_file(path, where):
    """KEY=VALUE lines as kustomize reads an env file: blank lines and # comments skipped."""
    data = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n").lstrip()
            if not line or line.startswith("#"):
                continue
            if "=" not in line:
                refuse("%s line %d: %r (a key without a value is read from kustomize's environment)"
                       % (where, n, line))
            key, val = line.split("=", 1)
            if not ENV_KEY.match(key):
                raise RenderError("%s line %d: %r is not a valid ConfigMap key" % (where, n, key))
            if val != val.strip() or val[:1] in ("'", '"'):
                refuse("%s line %d: a value with quotes or surrounding blanks" % (where, n))
            if key in data:
                raise RenderError("%s: key %s twice" % (where, key))
            data[key] = val
    return data


def kustomize_hash(data):
    """kustomize's name suffix of a generated ConfigMap (api/hasher): the first ten hex
    digits of the SHA-256 of {"data":..., "kind":"ConfigMap", "name":""} with Go's sorted
    compact JSON, five digits swapped for letters.  "name" is empty: the hasher looks
    "metadata/name" up as a single key, which never exists."""
    doc = {"data": data, "kind": "ConfigMap", "name": ""}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for ch in "<>&\u2028\u2029":  # Go's json.Marshal escapes these (HTML-safe output)
        text = text.replace(ch, "\\u%04x" % ord(ch))
    return hashlib.sha256(text.encode()).hexdigest()[:10].translate(str.maketrans("013ae", "ghkmt"))


def generate_configmaps(d, gens):
    objs, renames = [], {}
    for i, g in enumerate(gens or []):
        where = "configMapGenerator[%d]" % i
        check_keys(g, {"name", "envs", "literals"}, where)
        name = g.get("name")
        if not isinstance(name, str) or not name:
            raise RenderError("%s: no name" % where)
        data = {}
        for e in g.get("envs") or []:
            for k, v in env_file(os.path.join(d, e), "%s %s" % (where, e)).items():
                if k in data:
                    raise RenderError("%s: key %s twice" % (where, k))
                data[k] = v
        for lit in g.get("literals") or []:
            if "=" not in lit:
                raise RenderError("%s: literal %r is not KEY=VALUE" % (where, lit))
            k, v = lit.split("=", 1)
            if k in data:
                raise RenderError("%s: key %s twice" % (where, k))
            data[k] = v
        hashed = "%s-%s" % (name, kustomize_hash(data))
        renames[name] = hashed
        objs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": hashed}, "data": data})
    return objs, renames


# ---------------------------------------------------------------------------
# transformers: pod specs, names, images, labels
# ---------------------------------------------------------------------------

def pod_specs(o):
    """The pod specs of an object, wherever its kind keeps them."""
    spec = o.get("spec") or {}
    if o["kind"] == "Pod":
        return [spec]
    if o["kind"] == "CronJob":
        return [(((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec") or {}]
    tpl = spec.get("template")
    if isinstance(tpl, dict) and isinstance(tpl.get("spec"), dict):
        return [tpl["spec"]]
    return []


def containers(ps):
    return [c for key in ("containers", "initContainers") for c in ps.get(key) or []]


def rename_configmap_refs(o, renames):
    def fix(ref):
        if isinstance(ref, dict) and ref.get("name") in renames:
            ref["name"] = renames[ref["name"]]

    for ps in pod_specs(o):
        for c in containers(ps):
            for ef in c.get("envFrom") or []:
                fix(ef.get("configMapRef"))
            for ev in c.get("env") or []:
                fix((ev.get("valueFrom") or {}).get("configMapKeyRef"))
        for v in ps.get("volumes") or []:
            fix(v.get("configMap"))
            for src in (v.get("projected") or {}).get("sources") or []:
                fix(src.get("configMap"))


def split_image(image):
    """name, tag, digest of an image reference (a port in the registry is no tag)."""
    digest = ""
    if "@" in image:
        image, digest = image.split("@", 1)
    tag = ""
    slash, colon = image.rfind("/"), image.rfind(":")
    if colon > slash:
        image, tag = image[:colon], image[colon + 1:]
    return image, tag, digest


def set_images(o, images):
    for ps in pod_specs(o):
        for c in containers(ps):
            if not isinstance(c.get("image"), str):
                continue
            name, tag, digest = split_image(c["image"])
            for im in images:
                if im["name"] != name:
                    continue
                name = im.get("newName", name)
                if "newTag" in im:
                    tag, digest = str(im["newTag"]), ""
                if "digest" in im:
                    tag, digest = "", im["digest"]
                c["image"] = name + (":" + tag if tag else "") + ("@" + digest if digest else "")
                break


def check_images(images):
    for i, im in enumerate(images or []):
        check_keys(im, {"name", "newName", "newTag", "digest"}, "images[%d]" % i)
        if not isinstance(im.get("name"), str):
            raise RenderError("images[%d]: no name" % i)


def label_pairs(labels):
    pairs = {}
    for i, lb in enumerate(labels or []):
        where = "labels[%d]" % i
        check_keys(lb, {"pairs", "includeSelectors", "includeTemplates"}, where)
        if lb.get("includeSelectors", False) is not False:
            refuse(where + ".includeSelectors: true")
        if lb.get("includeTemplates", False) is not False:
            refuse(where + ".includeTemplates: true")
        for k, v in (lb.get("pairs") or {}).items():
            pairs[str(k)] = str(v)
    return pairs


# ---------------------------------------------------------------------------
# the whole kustomization
# ---------------------------------------------------------------------------

# kustomize's legacy output order (api/resid/gvk.go): these kinds first, in this order,
# those last, every other kind between them; then by group_version_kind and name.
ORDER_FIRST = ["Namespace", "ResourceQuota", "StorageClass", "CustomResourceDefinition", "ServiceAccount",
               "PodSecurityPolicy", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding", "ConfigMap",
               "Secret", "Endpoints", "Service", "LimitRange", "PriorityClass", "PersistentVolume",
               "PersistentVolumeClaim", "Deployment", "StatefulSet", "CronJob", "PodDisruptionBudget"]
ORDER_LAST = ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]


def sort_key(o):
    kind = o["kind"]
    if kind in ORDER_FIRST:
        rank = ORDER_FIRST.index(kind) - len(ORDER_FIRST)
    elif kind in ORDER_LAST:
        rank = 1 + ORDER_LAST.index(kind)
    else:
        rank = 0
    group, _, version = o["apiVersion"].rpartition("/")
    gvk = "%s_%s_%s" % (group or "~G", version, kind)
    md = o.get("metadata") or {}
    return (rank, gvk, md.get("namespace", ""), md["name"])


def render(d):
    k = load_kustomization(d)
    objs = load_resources(d, k.get("resources"))
    generated, renames = generate_configmaps(d, k.get("configMapGenerator"))
    check_images(k.get("images"))
    pairs = label_pairs(k.get("labels"))
    objs = generated + objs
    seen = set()
    for o in objs:
        ident = (o["apiVersion"].rpartition("/")[0], o["kind"], (o["metadata"]).get("namespace", ""),
                 o["metadata"]["name"])
        if ident in seen:
            raise RenderError("two objects %s %s" % (o["kind"], o["metadata"]["name"]))
        seen.add(ident)
        rename_configmap_refs(o, renames)
        set_images(o, k.get("images") or [])
        if pairs:
            o["metadata"].setdefault("labels", {}).update(pairs)
    return sorted(objs, key=sort_key)


def first_difference(got, want, path="$"):
    """The JSON path and both values of the first difference, or None when equal."""
    if isinstance(got, dict) and isinstance(want, dict):
        for key in sorted(set(got) | set(want)):
            if key not in got or key not in want:
                return "%s.%s: %s here, %s in kubectl's" % (path, key, "absent" if key not in got else "present",
                                                             "absent" if key not in want else "present")
            diff = first_difference(got[key], want[key], "%s.%s" % (path, key))
            if diff:
                return diff
        return None
    if isinstance(got, list) and isinstance(want, list):
        if len(got) != len(want):
            return "%s: %d items here, %d in kubectl's" % (path, len(got), len(want))
        for i, (g, w) in enumerate(zip(got, want)):
            diff = first_difference(g, w, "%s[%d]" % (path, i))
            if diff:
                return diff
        return None
    if got != want or type(got) is not type(want):
        return "%s: %r here, %r in kubectl's" % (path, got, want)
    return None


def main(argv):
    if len(argv) not in (2, 4) or (len(argv) == 4 and argv[2] != "--compare"):
        sys.stderr.write("usage: k8s_render.py DIR [--compare KUBECTL_OUTPUT]\n")
        return 2
    try:
        objs = render(argv[1])
    except (RenderError, OSError, yaml.YAMLError) as e:
        sys.stderr.write("k8s_render: %s\n" % e)
        return 1
    yaml.safe_dump_all(objs, sys.stdout, default_flow_style=False, sort_keys=True)
    if len(argv) == 4:
        with open(argv[3]) as f:
            want = [o for o in yaml.safe_load_all(f) if o is not None]
        ids = lambda objs: ["%s/%s" % (o.get("kind"), (o.get("metadata") or {}).get("name")) for o in objs]
        if ids(objs) != ids(want):
            sys.stderr.write("k8s_render: objects %s here, %s in kubectl's\n" % (ids(objs), ids(want)))
            return 1
        for g, w, name in zip(objs, want, ids(objs)):
            diff = first_difference(g, w)
            if diff:
                sys.stderr.write("k8s_render: %s differs from kubectl's: %s\n" % (name, diff))
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
