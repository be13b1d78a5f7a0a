#!/usr/bin/env bash
# Offline checks of the deployment files; exits non-zero on the first kind of failure it finds.
#
# 1. Every manifest in deploy/k8s (except kustomization.yaml) against the Kubernetes JSON
#    schemas shipped inside the PyPI package kubernetes-validate (pinned in
#    benches/requirements.txt; `pip install -r benches/requirements.txt`), in strict mode
#    (unknown fields are errors). A manifest whose kind/apiVersion has no schema is an error
#    too (kubernetes-validate itself only warns).
# 2. Cross-manifest consistency the schemas cannot see: selectors match their pod templates,
#    Service target ports and probe ports exist, referenced ConfigMaps/Secrets/Deployments
#    exist, resource quantities parse, the termination grace covers SEXTANT_SHUTDOWN_GRACE_S,
#    the files kustomization.yaml lists exist.
# 3. kustomization.yaml, rendered with `kubectl kustomize` (offline) when kubectl is installed,
#    and the rendered output validated as in 1.
# 4. deploy/compose.yaml parses as YAML and its services, dependencies and volumes agree.
#
# No network is needed. Usage: deploy/validate.sh   (KUBERNETES_VERSION=1.33.0 by default)
set -euo pipefail
cd "$(dirname "$0")"

KUBERNETES_VERSION="${KUBERNETES_VERSION:-1.33.0}"

if ! command -v kubernetes-validate >/dev/null 2>&1; then
    echo "validate.sh: kubernetes-validate is not installed: pip install -r benches/requirements.txt" >&2
    exit 2
fi

manifests=()
for f in k8s/*.yaml; do
    [ "$(basename "$f")" = kustomization.yaml ] || manifests+=("$f")
done

# kubernetes-validate: exit 1 on a schema error; its "Couldn't find schema" warning
# (a misspelt kind or apiVersion) is turned into a failure here.
validate() {
    local out status=0
    out=$(kubernetes-validate --strict --kubernetes-version "$KUBERNETES_VERSION" "$@" 2>&1) || status=$?
    [ -z "$out" ] || printf '%s\n' "$out"
    if [ "$status" -ne 0 ]; then
        return "$status"
    fi
    if grep -q "Couldn't find schema" <<<"$out"; then
        echo "validate.sh: no schema for a kind/apiVersion above (Kubernetes $KUBERNETES_VERSION)" >&2
        return 1
    fi
}

echo "== kubernetes-validate $(kubernetes-validate --version 2>&1 | awk '{print $NF}') --strict, Kubernetes $KUBERNETES_VERSION"
validate "${manifests[@]}"

echo "== consistency of deploy/k8s"
python3 - "${manifests[@]}" <<'PY'
import os
import re
import sys

import yaml

errors = []
docs = []  # (file, resource)
for path in sys.argv[1:]:
    with open(path) as f:
        found = [d for d in yaml.safe_load_all(f) if d is not None]
    if not found:
        errors.append(f"{path}: no resource in the file")
    for d in found:
        for key in ("apiVersion", "kind"):
            if not d.get(key):
                errors.append(f"{path}: no {key}")
        if not d.get("metadata", {}).get("name"):
            errors.append(f"{path}: no metadata.name")
        docs.append((path, d))

seen = {}
for path, d in docs:
    key = (d.get("kind"), d.get("metadata", {}).get("name"))
    if key in seen:
        errors.append(f"{path}: {key[0]}/{key[1]} also in {seen[key]}")
    seen[key] = path

def named(kind):
    return {d["metadata"]["name"]: (p, d) for p, d in docs if d.get("kind") == kind}

configmaps, secrets, deployments = named("ConfigMap"), named("Secret"), named("Deployment")

# Pod templates: Deployments, Jobs and CronJobs.
templates = []  # (file, owner, template, selector labels or None)
for path, d in docs:
    owner = f"{d['kind']}/{d['metadata']['name']}"
    spec = d.get("spec", {})
    if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        templates.append((path, owner, spec.get("template", {}), spec.get("selector")))
    elif d["kind"] == "CronJob":
        templates.append((path, owner, spec["jobTemplate"]["spec"]["template"], None))

def matches(selector_labels, labels):
    return all(labels.get(k) == v for k, v in selector_labels.items())

quantity = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")
shutdown_grace = max(
    [int(d.get("data", {}).get("SEXTANT_SHUTDOWN_GRACE_S", 30)) for _, (_, d) in configmaps.items()]
    or [30]
)

for path, owner, tmpl, selector in templates:
    labels = tmpl.get("metadata", {}).get("labels", {})
    if selector is not None:
        ml = selector.get("matchLabels", {})
        if not ml or not matches(ml, labels):
            errors.append(f"{path}: {owner}: selector {ml} does not match the template's labels {labels}")
    pod = tmpl.get("spec", {})
    volumes = {v["name"] for v in pod.get("volumes", [])}
    for v in pod.get("volumes", []):
        size = v.get("emptyDir", {}).get("sizeLimit") if isinstance(v.get("emptyDir"), dict) else None
        if size is not None and not quantity.match(str(size)):
            errors.append(f"{path}: {owner}: volume {v['name']}: sizeLimit {size!r} is not a quantity")
    for c in pod.get("initContainers", []) + pod.get("containers", []):
        where = f"{path}: {owner}: container {c['name']}"
        ports = {p.get("name") for p in c.get("ports", [])}
        for section in ("requests", "limits"):
            for res, value in c.get("resources", {}).get(section, {}).items():
                if not quantity.match(str(value)):
                    errors.append(f"{where}: resources.{section}.{res} {value!r} is not a quantity")
        for src in c.get("envFrom", []):
            if "configMapRef" in src and src["configMapRef"]["name"] not in configmaps:
                errors.append(f"{where}: ConfigMap {src['configMapRef']['name']} is not defined")
            if "secretRef" in src and src["secretRef"]["name"] not in secrets:
                errors.append(f"{where}: Secret {src['secretRef']['name']} is not defined")
        for m in c.get("volumeMounts", []):
            if m["name"] not in volumes:
                errors.append(f"{where}: mounts volume {m['name']}, which the pod does not define")
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            port = c.get(probe, {}).get("httpGet", {}).get("port")
            if isinstance(port, str) and port not in ports:
                errors.append(f"{where}: {probe} uses port {port!r}, not one of {sorted(ports)}")
        if c.get("args", [None])[0] == "serve":
            grace = pod.get("terminationGracePeriodSeconds", 30)
            if grace <= shutdown_grace:
                errors.append(
                    f"{where}: terminationGracePeriodSeconds {grace} is not above "
                    f"SEXTANT_SHUTDOWN_GRACE_S {shutdown_grace}"
                )

for path, d in docs:
    kind, name, spec = d["kind"], d["metadata"]["name"], d.get("spec", {})
    if kind == "Service":
        selected = [t for t in templates if matches(spec.get("selector", {}), t[2].get("metadata", {}).get("labels", {}))]
        if not selected:
            errors.append(f"{path}: Service/{name}: selector {spec.get('selector')} matches no pod template")
        for port in spec.get("ports", []):
            target = port.get("targetPort")
            if isinstance(target, str):
                for t in selected:
                    names = {p.get("name") for c in t[2]["spec"]["containers"] for p in c.get("ports", [])}
                    if target not in names:
                        errors.append(f"{path}: Service/{name}: targetPort {target!r} is not a port of {t[1]}")
    elif kind == "HorizontalPodAutoscaler":
        ref = spec["scaleTargetRef"]
        if ref["kind"] == "Deployment" and ref["name"] not in deployments:
            errors.append(f"{path}: HPA/{name}: Deployment {ref['name']} is not defined")
    elif kind == "PodDisruptionBudget":
        ml = spec.get("selector", {}).get("matchLabels", {})
        if not any(matches(ml, t[2].get("metadata", {}).get("labels", {})) for t in templates):
            errors.append(f"{path}: PDB/{name}: selector {ml} matches no pod template")

kustomization = os.path.join("k8s", "kustomization.yaml")
if os.path.exists(kustomization):
    with open(kustomization) as f:
        k = yaml.safe_load(f)
    for res in k.get("resources", []):
        if not os.path.exists(os.path.join("k8s", res)):
            errors.append(f"{kustomization}: resource {res} does not exist")

for e in errors:
    print("ERROR", e)
if errors:
    sys.exit(1)
print(f"OK {len(docs)} resources in {len(sys.argv) - 1} files")
PY

if command -v kubectl >/dev/null 2>&1; then
    echo "== kubectl kustomize k8s"
    rendered=$(mktemp --suffix=.yaml)
    trap 'rm -f "$rendered"' EXIT
    kubectl kustomize k8s >"$rendered"
    validate --quiet "$rendered"
    echo "OK kustomization renders $(grep -c '^kind:' "$rendered") resources, all valid"
else
    echo "== kubectl not installed: kustomization.yaml not rendered"
fi

echo "== compose.yaml"
python3 - compose.yaml <<'PY'
import sys

import yaml

path = sys.argv[1]
with open(path) as f:
    compose = yaml.safe_load(f)
errors = []
services = compose.get("services") or {}
if not services:
    errors.append("no services")
allowed_top = {"name", "services", "volumes", "networks", "configs", "secrets", "include", "models"}
for key in compose:
    if key not in allowed_top and not key.startswith("x-"):
        errors.append(f"unknown top-level key {key!r}")
volumes = set((compose.get("volumes") or {}).keys())
conditions = {"service_started", "service_healthy", "service_completed_successfully"}
for name, svc in services.items():
    if not (svc.get("image") or svc.get("build")):
        errors.append(f"service {name}: neither image nor build")
    deps = svc.get("depends_on") or {}
    for dep, how in (deps.items() if isinstance(deps, dict) else ((d, {}) for d in deps)):
        if dep not in services:
            errors.append(f"service {name}: depends on unknown service {dep}")
            continue
        cond = (how or {}).get("condition", "service_started")
        if cond not in conditions:
            errors.append(f"service {name}: unknown condition {cond}")
        if cond == "service_healthy" and "healthcheck" not in services[dep]:
            errors.append(f"service {name}: waits for {dep} to be healthy, but {dep} has no healthcheck")
        if services[dep].get("profiles") and not svc.get("profiles"):
            errors.append(f"service {name}: depends on {dep}, which only runs under a profile")
    for v in svc.get("volumes") or []:
        source = v.split(":", 1)[0] if isinstance(v, str) else v.get("source", "")
        if source and not source.startswith((".", "/", "~")) and source not in volumes:
            errors.append(f"service {name}: volume {source} is not declared")
for e in errors:
    print(f"ERROR {path}: {e}")
if errors:
    sys.exit(1)
print(f"OK {path}: {len(services)} services ({', '.join(services)})")
PY

echo "deploy/validate.sh: all checks passed"
