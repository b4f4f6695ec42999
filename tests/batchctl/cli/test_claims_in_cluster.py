"""Claims from anywhere a kubeconfig reaches, in the name the cluster knows (issue 21).

The site as it runs: the fake API server (the official client over HTTP, unchanged)
with the example overlay's RBAC loaded, so every request is authorized by the shipped
Roles; a real exporter on real Redis, in the cluster's place behind the service proxy
(Service batchctl:9808), reading the claims from the Leases. Engineers run the CLI with
their own kubeconfig (a token the fake API maps to alice, bob, carol or dave through
SelfSubjectReview) and a config whose broker URL points at a closed port: nothing of
theirs reaches the broker.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from click.testing import CliRunner, Result
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from autoscaler.claimmirror import ClaimMirror
from batchctl.claims import Work
from batchctl.claims.lease_store import LeaseClaimStore
from batchctl.claims.redis_store import RedisClaimStore
from batchctl.cli import cli
from batchctl.config import Config, parse_config
from batchctl.demo.tasks import enqueue, make_app
from exporter.runtime import Running, start_exporter
from tests.support.fakekube import FakeKube
from tests.support.http import get
from tests.support.isolation import starts_servers
from tests.support.kustomize import K8S, kustomize
from tests.support.metrics import sample, samples
from tests.support.servers.network import closed_port
from tests.support.servers.redis import RedisServer, free_port
from tests.support.waits import wait_for

NS = "court-listener"
BATCHES: list[dict[str, Any]] = [
    {"queue": f"batch{i}", "deployment": f"celery-batch{i}"} for i in range(4)
]
BATCHES[1]["task_seconds"] = 60  # a pace to plan deadlines with (4 slots: 1 task/15 s)
PEOPLE = {"alice": "batchctl-claimer", "bob": "batchctl-claimer",
          "carol": "batchctl-admin", "dave": "batchctl-viewer"}  # fmt: skip


@pytest.fixture(scope="module")
@starts_servers
def rbac() -> list[dict[str, Any]]:
    """The example overlay's objects: its Roles and bindings are the cluster's RBAC."""
    return kustomize(K8S / "overlays" / "example")


def admission() -> list[dict[str, Any]]:
    """The admission policy rendered beside the example overlay (a cluster admin applies
    it apart): the fake API evaluates its CEL on every claim Lease written."""
    path = K8S / "overlays" / "example" / "batchctl" / "admission-claims.yaml"
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@dataclass
class Site:
    kube: FakeKube
    exporter: Running
    pod_config: dict[str, Any]  # what the pod's containers read
    tmp: Path

    def kubeconfig(self, user: str) -> str:
        return str(self.kube.write_kubeconfig(self.tmp, token=TOKENS[user], filename=user))

    def engineer_config(self) -> str:
        """An engineer's config: the site's batches, the claims in the cluster, and a
        broker nobody can reach (the CLI must not need it)."""
        path = self.tmp / "engineer.yml"
        path.write_text(
            yaml.safe_dump(
                {
                    "broker": {"url": f"redis://127.0.0.1:{closed_port()}/0"},
                    "kubernetes": {"namespace": NS, "request_timeout_seconds": 2},
                    "claims": {"store": "kubernetes"},
                    "batches": BATCHES,
                }
            )
        )
        return str(path)

    def run(self, user: str, *args: str, config: bool = True, **env: str) -> Result:
        """`batchctl ARGS` as `user`: their kubeconfig, the engineer's config."""
        argv = [*args, "--kubeconfig", self.kubeconfig(user)]
        if config:
            argv += ["-c", self.engineer_config()]
        return CliRunner().invoke(cli, argv, env={"USER": user, **env}, catch_exceptions=False)

    def pod_cfg(self) -> Config:
        return parse_config(self.pod_config, env={})


TOKENS: dict[str, str] = {}


@pytest.fixture
def site(redis_server: RedisServer, tmp_path: Path, rbac: list[dict[str, Any]]) -> Iterator[Site]:
    with FakeKube(NS) as kube:
        kube.apply_rbac(rbac)
        kube.apply_admission(admission())
        for user, role in PEOPLE.items():
            TOKENS[user] = kube.add_user(user, groups=("engineers",))
            kube.bind(role, user=user)
        for b in BATCHES:
            kube.add_deployment(b["deployment"], replicas=0, ready=0)
        raw: dict[str, Any] = {
            "broker": {"url": redis_server.url, "discover_queues": False},
            "kubernetes": {
                "namespace": NS,
                "kubeconfig": str(kube.write_kubeconfig(tmp_path, filename="pod")),
                "request_timeout_seconds": 2,
            },
            "claims": {"store": "kubernetes"},
            "batches": BATCHES,
            "cost": {"currency": "EUR", "price_per_replica_hour": 0.12},
        }
        exporter = start_exporter(parse_config(raw, env={}), f"127.0.0.1:{free_port()}")
        kube.add_service("batchctl", {9808: exporter.url}, port_names={"metrics": 9808})
        try:
            yield Site(kube, exporter, raw, tmp_path)
        finally:
            exporter.stop()


def doc(res: Result) -> Any:
    return json.loads(res.stdout)


def batch(status: dict[str, Any], queue: str) -> dict[str, Any]:
    return next(b for b in status["batches"] if b["queue"] == queue)


def test_two_engineers_claim_through_the_cluster(
    site: Site, redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    enqueue(make_app(redis_server.url), "batch1", 5, seconds=0)

    # alice claims in the name the cluster knows her by; the broker is out of reach.
    res = site.run("alice", "claim", "batch1", "--purpose", "reindex dockets", "-o", "json")
    assert res.exit_code == 0, res.output
    got = doc(res)
    assert got["event"] == "claimed"
    assert (got["claim"]["holder"], got["claim"]["holder_verified"]) == ("alice", True)
    assert got["identity"] == {"name": "alice", "verified": True,
                               "source": "the cluster (SelfSubjectReview)",
                               "groups": ["engineers", "system:authenticated"]}  # fmt: skip
    assert got["waiting"] == 5  # what is already waiting: the exporter's reading
    lease = site.kube.lease("batchctl-claim-batch1")
    assert lease is not None and lease["spec"]["holderIdentity"] == "alice"

    # status: her claim, and the queue's waiting count through the service proxy.
    site.kube.clear_requests()
    res = site.run("alice", "status", "-o", "json")
    assert res.exit_code == 0, res.output
    row = batch(doc(res), "batch1")
    assert row["claim"]["holder"] == "alice" and row["waiting"] == 5
    assert site.kube.requests_to(
        "GET", rf"^/api/v1/namespaces/{NS}/services/batchctl:9808/proxy/api/v1/snapshot$"
    )

    # bob may not claim, release or scale alice's batch, nor claim in her name.
    res = site.run("bob", "claim", "batch1", "--purpose", "mine now")
    assert res.exit_code == 1 and "claimed by alice" in res.stderr
    res = site.run("bob", "release", "batch1")
    assert res.exit_code == 1 and "claimed by alice, not bob" in res.stderr
    res = site.run("bob", "scale", "batch1", "2")
    assert res.exit_code == 1 and "claimed by alice" in res.stderr
    res = site.run("bob", "claim", "batch1", "--holder", "alice", "--purpose", "sneaky")
    assert res.exit_code == 2 and "the cluster knows you as bob" in res.stderr
    # --force needs batchctl-admin: the cluster's RBAC says no (SelfSubjectAccessReview).
    res = site.run("bob", "release", "batch1", "--force", "--reason", "mine")
    assert res.exit_code == 1 and "batchctl-admin" in res.stderr
    assert site.kube.lease("batchctl-claim-batch1")["spec"]["holderIdentity"] == "alice"

    # bob's --any gives him another batch.
    res = site.run("bob", "claim", "--any", "--purpose", "dedupe")
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == "batch0"

    # The work done (a worker took it), alice gives the batch back.
    # (every priority list of the queue: batch1, batch1\x06\x163, ...)
    redis_db.delete(*[k for k in redis_db.scan_iter(b"batch1*")])
    res = site.run("alice", "release", "batch1", "-o", "json")
    assert res.exit_code == 0, res.output
    assert (doc(res)["event"], doc(res)["waiting"], doc(res)["in_flight"]) == ("released", 0, 0)

    # The history reads back: what, who, verified; a viewer may read it.
    res = site.run("dave", "history", "-o", "json")
    assert res.exit_code == 0, res.output
    events = [(e["kind"], e["queue"], e["who"], e["verified"]) for e in doc(res)["events"]]
    assert events == [
        ("claimed", "batch1", "alice", True),
        ("claimed", "batch0", "bob", True),
        ("released", "batch1", "alice", True),
    ]
    # ...but not change anything.
    res = site.run("dave", "claim", "batch2", "--purpose", "look")
    assert res.exit_code == 2 and 'User "dave" cannot create resource "leases"' in res.stderr


def test_the_sidecar_keeps_the_history_and_tells_the_deployment(site: Site) -> None:
    """The leading sidecar copies the events the Leases carry into the ring (only its
    service account writes it) and onto each batch's Deployment."""
    assert site.run("alice", "claim", "batch2", "--purpose", "backfill").exit_code == 0
    assert site.run("alice", "scale", "batch2", "3", "--for", "10m").exit_code == 0
    mirror = ClaimMirror(site.pod_cfg()).start()
    try:
        wait_for(lambda: mirror.copied == 2, what="the mirror copying both events")
        ring = site.kube.configmap("batchctl-claim-history-0")
        assert ring is not None
        kinds = [json.loads(line)["kind"] for line in ring["data"]["events.jsonl"].splitlines()]
        assert kinds == ["claimed", "scaled"]
        events = [e for e in site.kube.events() if e["involvedObject"]["name"] == "celery-batch2"]
        assert [(e["reason"], e["type"]) for e in events] == [
            ("Claimed", "Normal"),
            ("ManualScale", "Normal"),
        ]
        uid = site.kube.deployment("celery-batch2")["metadata"]["uid"]
        assert all(e["involvedObject"]["uid"] == uid for e in events)
        assert "alice claimed batch2 (backfill)" in events[0]["message"]
        # A change later: copied once, the earlier ones not again.
        assert site.run("alice", "release", "batch2").exit_code == 0
        wait_for(lambda: mirror.copied == 3, what="the mirror copying the release")
    finally:
        mirror.stop()
    assert len([e for e in site.kube.events() if e["reason"] == "Claimed"]) == 1
    # People read the ring; they cannot write it.
    res = site.run("carol", "history", "batch2", "-o", "json")
    assert [e["kind"] for e in doc(res)["events"]] == ["claimed", "scaled", "released"]


def test_an_admin_forces_with_a_reason(site: Site) -> None:
    assert site.run("alice", "claim", "batch3", "--purpose", "long job").exit_code == 0
    res = site.run("carol", "release", "batch3", "--force", "--reason", "alice is away")
    assert res.exit_code == 0, res.output
    res = site.run("dave", "history", "batch3", "-o", "json")
    (_, forced) = doc(res)["events"]
    assert (forced["kind"], forced["who"], forced["holder"]) == ("forced", "carol", "alice")
    assert "alice is away" in forced["detail"]


def test_only_a_kubeconfig(site: Site) -> None:
    """No config file at all: the site's config comes from the exporter."""
    res = site.run("alice", "claim", "batch2", "--purpose", "no config", "-n", NS, config=False)
    assert res.exit_code == 0, res.output
    res = site.run("alice", "status", "-o", "json", config=False)
    assert res.exit_code == 0, res.output
    assert [b["queue"] for b in doc(res)["batches"]] == [b["queue"] for b in BATCHES]
    assert batch(doc(res), "batch2")["claim"]["holder"] == "alice"


def test_plans_and_deadlines_with_only_a_kubeconfig(site: Site, redis_server: RedisServer) -> None:
    """`plan` and `claim --finish-by` with no config file and the broker out of reach:
    the batch's caps, pace and prices from the exporter's /api/v1/config, the work left
    from its snapshot, both through the service proxy."""
    enqueue(make_app(redis_server.url), "batch1", 120, seconds=0)
    site.kube.clear_requests()
    res = site.run("alice", "plan", "batch1", "--finish-by", "2h", "-n", NS, "-o", "json",
                   config=False)  # fmt: skip
    assert res.exit_code == 0, res.output
    got = doc(res)
    assert (got["work"], got["pace_from"], got["feasible"]) == (120, "task_seconds (config)", True)
    assert got["cost"]["currency"] == "EUR" and got["cost"]["cost"] is not None
    assert site.kube.requests_to(
        "GET", rf"^/api/v1/namespaces/{NS}/services/batchctl:9808/proxy/api/v1/snapshot$"
    )
    # A deadline the cap (5 replicas) cannot meet is refused before anything is written.
    res = site.run("alice", "plan", "batch1", "--finish-by", "1m", "-n", NS, config=False)
    assert res.exit_code == 1 and "cannot be done in time" in res.stdout
    res = site.run("alice", "claim", "batch1", "--purpose", "reindex", "--finish-by", "1m",
                   "-n", NS, config=False)  # fmt: skip
    assert res.exit_code == 1 and "cannot finish batch1" in res.stderr
    assert site.kube.lease("batchctl-claim-batch1") is None
    # One it can: the deadline rides in the Lease, as every field of the record does.
    before = time.time()
    res = site.run("alice", "claim", "batch1", "--purpose", "reindex", "--finish-by", "2h",
                   "-n", NS, "-o", "json", config=False)  # fmt: skip
    assert res.exit_code == 0, res.output
    finish_by = doc(res)["claim"]["finish_by"]
    assert before + 7200 <= finish_by <= time.time() + 7200
    lease = site.kube.lease("batchctl-claim-batch1")
    assert lease is not None
    assert float(lease["metadata"]["annotations"]["claims.batchctl.io/finish_by"]) == (
        pytest.approx(finish_by, abs=0.001)
    )


def test_a_cluster_without_self_subject_review(site: Site) -> None:
    """Older than 1.28: the names given, marked unverified on every output."""
    site.kube.self_subject_review = False
    site.kube.admission = None  # nor ValidatingAdmissionPolicy (GA in 1.30)
    res = site.run("alice", "claim", "batch1", "--purpose", "old cluster", "-o", "json")
    assert res.exit_code == 0, res.output
    assert "unverified" in res.stderr
    got = doc(res)
    assert got["identity"]["verified"] is False and got["identity"]["source"] == "$USER"
    assert got["claim"]["holder_verified"] is False
    res = site.run("alice", "status")
    assert "alice (unverified)" in res.stdout
    res = site.run("dave", "history")
    assert "alice (unverified)" in res.stdout
    # --holder is taken as given there: still marked.
    res = site.run("bob", "claim", "batch2", "--holder", "robert", "--purpose", "x", "-o", "json")
    assert res.exit_code == 0 and doc(res)["claim"]["holder"] == "robert"
    assert doc(res)["identity"] == {"name": "robert", "verified": False, "source": "--holder",
                                    "groups": []}  # fmt: skip


def test_the_exporter_out_of_reach(site: Site) -> None:
    """Claims still show; the queues are unknown; exit 3, as a broker down does."""
    assert site.run("alice", "claim", "batch1", "--purpose", "x").exit_code == 0
    site.exporter.stop()
    res = site.run("alice", "status", "-o", "json")
    assert res.exit_code == 3
    assert "error trying to reach service" in res.stderr
    assert batch(doc(res), "batch1")["claim"]["holder"] == "alice"
    assert batch(doc(res), "batch1")["waiting"] is None
    # The release cannot tell what is left: it refuses rather than guess.
    res = site.run("alice", "release", "batch1")
    assert res.exit_code == 3 and "error trying to reach service" in res.stderr


def test_the_autoscaler_scales_a_batch_claimed_in_a_lease(
    site: Site, redis_server: RedisServer
) -> None:
    app = make_app(redis_server.url)
    enqueue(app, "batch1", 4, seconds=0)
    enqueue(app, "batch2", 4, seconds=0)  # unclaimed: stays at 0
    assert site.run("alice", "claim", "batch1", "--purpose", "reindex").exit_code == 0
    raw = json.loads(json.dumps(site.pod_config))
    raw["autoscaler"] = {
        "backend": "kubernetes",
        "snapshot_url": site.exporter.url,
        "startup_timeout_seconds": 10,
        "leader_election": {"enabled": False},
    }
    path = site.tmp / "sidecar.yml"
    path.write_text(yaml.safe_dump(raw))
    wait_for(
        lambda: site.exporter.source.collect().claims.get("batch1") is not None,
        what="the exporter's watch seeing the Lease",
    )
    res = CliRunner().invoke(cli, ["autoscaler", "-c", str(path), "--once"])
    assert res.exit_code == 0, res.output
    assert site.kube.replicas("celery-batch1") == 1
    assert site.kube.replicas("celery-batch2") == 0
    # alice's `scale` is a record in her Lease (she may not write Deployments): the
    # autoscaler applies it.
    res = site.run("alice", "scale", "batch1", "3", "--for", "30m", "-o", "json")
    assert res.exit_code == 0, res.output
    assert doc(res)["patched"] is False and site.kube.replicas("celery-batch1") == 1
    wait_for(
        lambda: (
            (c := site.exporter.source.collect().claims.get("batch1")) is not None
            and c.override is not None
        ),
        what="the exporter's watch seeing the override",
    )
    res = CliRunner().invoke(cli, ["autoscaler", "-c", str(path), "--once"])
    assert res.exit_code == 0, res.output
    assert site.kube.replicas("celery-batch1") == 3
    # The claim metrics as before: read from the Leases.
    _, _, text = get(site.exporter.url + "/metrics")
    assert sample(text, "celery_batch_claimed", {"queue": "batch1", "holder": "alice"}) == 1
    assert sample(text, "celery_batch_claim_expiry_timestamp_seconds", {"queue": "batch1"})
    assert not [s for s in samples(text, "celery_batch_claimed") if s.labels["queue"] == "batch2"]
    # No request per collection: the claims come from the watch.
    site.kube.clear_requests()
    for _ in range(3):
        site.exporter.source.collect()
    assert not site.kube.requests_to("GET", r"/leases", watch=False)


def test_one_command_moves_a_sites_claims_from_redis(site: Site, redis_db: redis.Redis) -> None:
    """`batchctl claims migrate --to kubernetes`, run in the pod (its config, its account):
    every live claim as it is, drain and manual scale included; again: nothing twice."""
    now = time.time()
    old = RedisClaimStore(redis_db)
    old.take("batch1", "alice", "reindex", 3600, now, contact="#infra")
    old.set_override("batch1", "alice", 3, now + 600, now + 1)
    old.take("batch3", "bob", "dedupe", 7200, now)
    old.give_back("batch3", "bob", False, now + 2, work=Work(4, 0), drain=True)
    before = old.all(["batch1", "batch3"])
    path = site.tmp / "pod.yml"
    path.write_text(yaml.safe_dump(site.pod_config))

    def migrate() -> Result:
        argv = ["claims", "migrate", "--to", "kubernetes", "-c", str(path), "-o", "json"]
        return CliRunner().invoke(cli, argv, catch_exceptions=False)

    res = migrate()
    assert res.exit_code == 0, res.output
    results = {r["queue"]: r["result"] for r in doc(res)["batches"]}
    assert results == {"batch0": "free", "batch1": "copied", "batch2": "free",
                       "batch3": "copied"}  # fmt: skip
    assert doc(res)["identity"]["name"] == f"system:serviceaccount:{NS}:batchctl"
    leases = LeaseClaimStore(site.pod_cfg().kubernetes)
    try:
        assert leases.all(["batch1", "batch3"]) == before
        # (one instant for both: their order is the ids')
        assert sorted((e.kind, e.holder) for e in leases.history().events) == [
            ("migrated", "alice"),
            ("migrated", "bob"),
        ]
    finally:
        leases.close()
    res = migrate()
    assert {r["result"] for r in doc(res)["batches"] if r["holder"]} == {"already there"}
    # A Lease that holds another live claim is never overwritten.
    assert site.run("carol", "claim", "batch2", "--purpose", "mine").exit_code == 0
    old.take("batch2", "erin", "hers", 3600, time.time())
    res = migrate()
    assert res.exit_code == 1
    assert "left alone" in {r["queue"]: r["result"] for r in doc(res)["batches"]}["batch2"]


def test_inside_the_pod_the_service_account_claims(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`kubectl exec deploy/batchctl -c exporter -- batchctl claim ...`: the pod's config
    (BATCHCTL_CONFIG, as the Deployment sets it) and no $USER, no passwd entry for its
    uid (it used to exit 2): the cluster names the caller, the service account."""

    def no_passwd_entry() -> str:
        raise KeyError("getpwuid(): uid not found: 65532")

    monkeypatch.setattr("getpass.getuser", no_passwd_entry)
    path = site.tmp / "pod.yml"
    path.write_text(yaml.safe_dump(site.pod_config))
    env = {"BATCHCTL_CONFIG": str(path), "USER": None, "LOGNAME": None}
    res = CliRunner().invoke(
        cli, ["claim", "batch3", "--purpose", "night run", "-o", "json"], env=env
    )
    assert res.exit_code == 0, res.output
    assert doc(res)["claim"]["holder"] == f"system:serviceaccount:{NS}:batchctl"
    assert doc(res)["identity"]["verified"] is True


def test_the_api_server_refuses_a_hand_edited_claim_lease(site: Site) -> None:
    """RBAC gives every claimer `update` on the claim Leases; the admission policy is what
    refuses bob's `kubectl edit` of alice's claim (his name as holder, or hers as the
    changer), while batchctl's own writes (every test of this module) pass it."""
    assert site.run("alice", "claim", "batch1", "--purpose", "reindex").exit_code == 0

    def leases(user: str) -> k8s.CoordinationV1Api:
        api = k8s_config.new_client_from_config(config_file=site.kubeconfig(user))
        return k8s.CoordinationV1Api(api)

    def edit(user: str, change: Any) -> k8s.ApiException | None:
        api = leases(user)
        lease = api.read_namespaced_lease("batchctl-claim-batch1", NS)
        change(lease)
        try:
            api.replace_namespaced_lease("batchctl-claim-batch1", NS, lease)
        except k8s.ApiException as e:
            return e
        finally:
            api.api_client.close()
        return None

    def take_over(lease: Any) -> None:  # bob's name everywhere, as batchctl would write it
        lease.spec.holder_identity = "bob"
        lease.metadata.annotations["claims.batchctl.io/holder"] = "bob"
        lease.metadata.annotations["batchctl.io/changed-by"] = "bob"

    def release(lease: Any) -> None:
        lease.spec.holder_identity = None
        lease.metadata.annotations.pop("claims.batchctl.io/holder", None)
        lease.metadata.annotations["batchctl.io/changed-by"] = "bob"

    def as_alice(lease: Any) -> None:
        lease.metadata.annotations["claims.batchctl.io/purpose"] = "bob was here"

    def forged_holder(lease: Any) -> None:
        lease.spec.holder_identity = "mallory"
        lease.metadata.annotations["batchctl.io/changed-by"] = "bob"

    refused = {name: edit("bob", change) for name, change in
               [("forged holder", forged_holder), ("as alice", as_alice),
                ("release", release)]}  # fmt: skip
    assert {n: (e.status, e.reason) if e else None for n, e in refused.items()} == {
        "forged holder": (403, "Forbidden"),
        "as alice": (403, "Forbidden"),
        "release": (403, "Forbidden"),
    }
    said = {n: json.loads(e.body)["message"] for n, e in refused.items() if e}
    assert said["release"] == (
        "ValidatingAdmissionPolicy 'batchctl-claims-court-listener' with binding "
        "'batchctl-claims-court-listener' denied request: someone else's claim: releasing, "
        "draining or scaling it takes the Role batchctl-admin (the verb force on this Lease)"
    )
    assert said["as alice"].endswith("(batchctl.io/changed-by): only yourself")
    assert said["forged holder"].endswith(
        "you may claim only in your own name (spec.holderIdentity)"
    )
    assert site.kube.lease("batchctl-claim-batch1")["spec"]["holderIdentity"] == "alice"
    # The holder edits her own claim.
    assert edit("alice", lambda lease: lease.metadata.annotations.update(
        {"batchctl.io/changed-by": "alice"})) is None  # fmt: skip
    # What CEL cannot refuse (it has no clock, so it cannot tell a live claim from an
    # expired one): bob taking alice's claim over in his own name (docs/deploy.md).
    assert edit("bob", take_over) is None
    assert site.kube.lease("batchctl-claim-batch1")["spec"]["holderIdentity"] == "bob"

    def admin_release(lease: Any) -> None:
        release(lease)
        lease.metadata.annotations["batchctl.io/changed-by"] = "carol"

    assert edit("carol", admin_release) is None
