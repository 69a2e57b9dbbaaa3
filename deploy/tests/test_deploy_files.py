"""Static checks of the deployment files: they parse, carry the fields a
working deployment needs, and agree with each other and with the programs
(every DSR_* variable is a real dsrd option, every dsr-train flag exists).

Run by tests/run_python.py (make test).  YAML is parsed with PyYAML
(Debian python3-yaml, in `make deps`).
"""

import glob
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY = os.path.join(REPO, "deploy")
BUILD_DIR = os.path.dirname(os.environ.get("DSR_TEST_DSRD") or os.path.join(REPO, "build", "dsrd"))


def read(rel):
    with open(os.path.join(REPO, rel)) as f:
        return f.read()


def program_flags(name):
    """The --long options a built program lists in its --help, or None when
    the program is not built in this tree."""
    path = os.path.join(BUILD_DIR, name)
    if not os.access(path, os.X_OK):
        return None
    out = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=30,
                         env={k: v for k, v in os.environ.items() if not k.startswith("DSR_")})
    flags = set(re.findall(r"--([a-z][a-z0-9-]*)", out.stdout + out.stderr))
    if not flags:
        raise AssertionError("%s --help listed no options" % name)
    return flags


def dsrd_env_names():
    flags = program_flags("dsrd")
    if flags is None:
        raise AssertionError("dsrd is not built in %s" % BUILD_DIR)
    return {"DSR_" + f.upper().replace("-", "_") for f in flags}


def image_uid():
    m = re.search(r"useradd .*--uid (\d+)", read("deploy/image-runtime.sh"))
    return int(m.group(1))


def container_path(volume):
    """The container side of a compose short volume syntax SRC:DST[:MODE]
    (SRC may hold ':' inside ${VAR:-default})."""
    src_free = re.sub(r"\$\{[^}]*\}", "X", volume)
    parts = src_free.split(":")
    return parts[1]


def env_map(container):
    return {e["name"]: e for e in container.get("env", [])}


class Compose(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.doc = yaml.safe_load(read("deploy/compose.yaml"))
        cls.services = cls.doc["services"]
        cls.servers = [n for n in cls.services if n != "trainer"]

    def test_services(self):
        self.assertIn("learner", self.services)
        rollouts = [n for n in self.services if n.startswith("rollout")]
        self.assertEqual(len(rollouts), 2)
        self.assertIn("trainer", self.services)
        for name, svc in self.services.items():
            self.assertTrue(svc.get("image"), name)

    def test_servers_env_probe_volumes_resources(self):
        valid = dsrd_env_names()
        for name in self.servers:
            svc = self.services[name]
            env = svc["environment"]
            self.assertEqual(env["DSR_HOST"], "0.0.0.0", name)
            for key in ("DSR_PORT", "DSR_MODEL", "DSR_CHECKPOINT_DIR", "DSR_API_KEY", "DSR_ADMIN_KEY"):
                self.assertIn(key, env, name)
            unknown = set(env) - valid
            self.assertFalse(unknown, "%s: not dsrd options: %s" % (name, unknown))
            self.assertIn("/health", " ".join(svc["healthcheck"]["test"]), name)
            mounts = {container_path(v): v for v in svc["volumes"]}
            self.assertIn("/models", mounts, name)
            self.assertTrue(mounts["/models"].endswith(":ro"), name)
            self.assertTrue(mounts["/checkpoints"].startswith("checkpoints:"), name)
            limits = svc["deploy"]["resources"]["limits"]
            self.assertTrue(limits.get("cpus") and limits.get("memory"), name)
        self.assertIn("checkpoints", self.doc["volumes"])
        # Only the learner writes checkpoints.
        self.assertFalse(self.services["learner"]["volumes"][1].endswith(":ro"))
        for name in self.servers:
            if name != "learner":
                self.assertTrue(any(v.startswith("checkpoints:") and v.endswith(":ro")
                                    for v in self.services[name]["volumes"]), name)
                self.assertEqual(self.services[name]["depends_on"]["learner"]["condition"],
                                 "service_healthy")

    def test_trainer_job(self):
        t = self.services["trainer"]
        self.assertEqual(t["entrypoint"], ["/usr/local/bin/dsr-train"])
        args = t["command"]
        pairs = list(zip(args, args[1:]))
        self.assertIn(("--learner", "http://learner:8080"), pairs)
        servers = {v for k, v in pairs if k == "--server"}
        self.assertEqual(servers, {"http://%s:8080" % n for n in self.servers if n != "learner"})
        self.assertIn("checkpoints:/checkpoints", t["volumes"])
        for dep in self.servers:
            self.assertEqual(t["depends_on"][dep]["condition"], "service_healthy")
        flags = program_flags("dsr-train")
        if flags is not None:
            used = {a[2:] for a in args if a.startswith("--")}
            self.assertFalse(used - flags, "not dsr-train flags: %s" % (used - flags))


class Kubernetes(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.objs = {}
        cls.files = sorted(glob.glob(os.path.join(DEPLOY, "k8s", "*.yaml")))
        for path in cls.files:
            if path.endswith("kustomization.yaml"):
                continue
            with open(path) as f:
                for doc in yaml.safe_load_all(f):
                    if doc:
                        cls.objs[(doc["kind"], doc["metadata"]["name"])] = doc

    def get(self, kind, name):
        self.assertIn((kind, name), self.objs)
        return self.objs[(kind, name)]

    def pod(self, kind, name):
        return self.get(kind, name)["spec"]["template"]["spec"]

    def check_container_basics(self, spec, who):
        self.assertTrue(spec["securityContext"]["runAsNonRoot"], who)
        self.assertEqual(spec["securityContext"]["runAsUser"], image_uid(), who)
        c = spec["containers"][0]
        self.assertTrue(c["image"].startswith("dsr"), who)
        res = c["resources"]
        for part in ("requests", "limits"):
            self.assertTrue(res[part].get("cpu") and res[part].get("memory"), (who, part))
        secret = self.get("Secret", "dsr-keys")
        env = env_map(c)
        for key in ("DSR_API_KEY", "DSR_ADMIN_KEY"):
            ref = env[key]["valueFrom"]["secretKeyRef"]
            self.assertEqual(ref["name"], "dsr-keys", who)
            self.assertIn(ref["key"], secret["stringData"], who)
        vols = {v["name"]: v for v in spec["volumes"]}
        for m in c["volumeMounts"]:
            self.assertIn(m["name"], vols, who)
            pvc = vols[m["name"]].get("persistentVolumeClaim")
            if pvc:
                self.get("PersistentVolumeClaim", pvc["claimName"])
        return c, vols

    def check_server(self, name, replicas_min):
        dep = self.get("Deployment", name)
        self.assertGreaterEqual(dep["spec"]["replicas"], replicas_min)
        labels = dep["spec"]["template"]["metadata"]["labels"]
        sel = dep["spec"]["selector"]["matchLabels"]
        self.assertLessEqual(sel.items(), labels.items(), name)
        c, vols = self.check_container_basics(dep["spec"]["template"]["spec"], name)
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        self.assertEqual(ports.get("http"), 8080)
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            get = c[probe]["httpGet"]
            self.assertEqual(get["path"], "/health", (name, probe))
            self.assertIn(get["port"], ("http", 8080), (name, probe))
        env = env_map(c)
        self.assertEqual(env["DSR_HOST"]["value"], "0.0.0.0")
        self.assertEqual(env["DSR_PORT"]["value"], "8080")
        self.assertFalse(set(env) - dsrd_env_names(), name)
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        self.assertEqual(env["DSR_MODEL"]["value"], "/models")
        self.assertTrue(mounts["/models"].get("readOnly"))
        self.assertEqual(env["DSR_CHECKPOINT_DIR"]["value"], "/checkpoints")
        ck = vols[mounts["/checkpoints"]["name"]]["persistentVolumeClaim"]["claimName"]
        self.assertEqual(ck, "dsr-checkpoints")
        # A Service routes to these pods on the named port.
        svcs = [o for (k, _), o in self.objs.items() if k == "Service"
                and o["spec"]["selector"].items() <= labels.items()]
        self.assertTrue(svcs, name)
        for s in svcs:
            self.assertTrue(all(p["targetPort"] in ("http", 8080) for p in s["spec"]["ports"]))
        return mounts, svcs

    def test_learner(self):
        mounts, svcs = self.check_server("dsr-learner", 1)
        self.assertEqual(self.get("Deployment", "dsr-learner")["spec"]["replicas"], 1)
        self.assertEqual(self.get("Deployment", "dsr-learner")["spec"]["strategy"]["type"], "Recreate")
        self.assertFalse(mounts["/checkpoints"].get("readOnly", False))
        self.assertIn("dsr-learner", [s["metadata"]["name"] for s in svcs])

    def test_rollout(self):
        mounts, svcs = self.check_server("dsr-rollout", 2)
        self.assertTrue(mounts["/checkpoints"].get("readOnly"))
        names = {s["metadata"]["name"]: s for s in svcs}
        self.assertIn("dsr-rollout", names)
        self.assertEqual(names["dsr-rollout-pods"]["spec"]["clusterIP"], "None")

    def test_checkpoint_pvc_shared(self):
        pvc = self.get("PersistentVolumeClaim", "dsr-checkpoints")
        self.assertIn("ReadWriteMany", pvc["spec"]["accessModes"])
        self.assertTrue(pvc["spec"]["resources"]["requests"]["storage"])

    def test_trainer_job(self):
        spec = self.pod("Job", "dsr-train")
        self.assertIn(spec["restartPolicy"], ("Never", "OnFailure"))
        c, _ = self.check_container_basics(spec, "dsr-train")
        script = " ".join(c.get("command", []) + c.get("args", []))
        self.assertIn("/usr/local/bin/dsr-train", script)
        env = env_map(c)
        self.assertEqual(env["DSR_LEARNER"]["value"], "http://dsr-learner:8080")
        self.get("Service", env["DSR_ROLLOUT_PODS"]["value"])
        self.assertEqual(int(env["DSR_ROLLOUT_REPLICAS"]["value"]),
                         self.get("Deployment", "dsr-rollout")["spec"]["replicas"])
        flags = program_flags("dsr-train")
        if flags is not None:
            used = set(re.findall(r"(?<![\w-])--([a-z][a-z0-9-]*)", c["args"][0]))
            self.assertFalse(used - flags, "not dsr-train flags: %s" % (used - flags))

    def test_kustomization_lists_every_manifest(self):
        k = yaml.safe_load(read("deploy/k8s/kustomization.yaml"))
        files = {os.path.basename(p) for p in self.files} - {"kustomization.yaml"}
        self.assertEqual(set(k["resources"]), files)
        for (_, _), o in self.objs.items():
            if o["kind"] != "Namespace":
                self.assertEqual(o["metadata"]["namespace"], k["namespace"])


class Dockerfile(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        text = read("Dockerfile").replace("\\\n", " ")
        cls.lines = [l.strip() for l in text.splitlines() if l.strip() and not l.strip().startswith("#")]

    def instr(self, name):
        return [l[len(name) + 1:] for l in self.lines if l.split()[0] == name]

    def test_stages_and_runtime(self):
        froms = self.instr("FROM")
        self.assertEqual(len(froms), 2)
        self.assertTrue(all(f.startswith("debian:bookworm-slim") for f in froms))
        self.assertIn("RUN deploy/image-build.sh /out", self.lines)
        self.assertIn("8080", self.instr("EXPOSE"))
        user = self.instr("USER")[-1]
        self.assertNotIn(user.split(":")[0], ("root", "0"))
        self.assertIn("/health", self.instr("HEALTHCHECK")[0])
        vols = " ".join(self.instr("VOLUME"))
        self.assertIn("/models", vols)
        self.assertIn("/checkpoints", vols)
        env = dict(kv.split("=", 1) for e in self.instr("ENV") for kv in e.split())
        self.assertEqual(env["DSR_HOST"], "0.0.0.0")
        # every ENV is a dsrd option; OMP_WAIT_POLICY stays libgomp's default
        # (OpenBLAS's OpenMP build shares the OpenMP team, see README)
        self.assertFalse(set(env) - dsrd_env_names())
        self.assertIn("dsrd", self.instr("ENTRYPOINT")[0])

    def test_runtime_packages_exist(self):
        m = re.search(r'RUNTIME_PACKAGES="([^"]+)"', read("deploy/image-runtime.sh"))
        pkgs = m.group(1).replace("\\\n", " ").split()
        for lib in ("libopenblas0-openmp", "libjansson4", "libmicrohttpd12", "libpng16-16", "libjpeg62-turbo",
                    "libuuid1", "libpcre2-8-0", "libicu72", "libcurl4", "libgomp1"):
            self.assertIn(lib, pkgs)
        if shutil.which("apt-cache"):
            out = subprocess.run(["apt-cache", "show", "--no-all-versions"] + pkgs,
                                 capture_output=True, text=True)
            found = set(re.findall(r"^Package: (\S+)$", out.stdout, re.M))
            self.assertEqual(found, set(pkgs))

    def test_dockerignore(self):
        pats = {l.strip() for l in read(".dockerignore").splitlines()
                if l.strip() and not l.startswith("#")}
        self.assertLessEqual({".git", "build"}, pats)


class Systemd(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.sections = {}
        section = None
        for line in read("deploy/systemd/dsrd.service").splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("["):
                section = cls.sections.setdefault(line.strip("[]"), {})
                continue
            k, v = line.split("=", 1)
            section.setdefault(k, []).append(v)

    def test_unit(self):
        self.assertEqual(set(self.sections), {"Unit", "Service", "Install"})
        s = self.sections["Service"]
        self.assertEqual(s["ExecStart"], ["/usr/local/bin/dsrd"])
        self.assertTrue(s.get("EnvironmentFile"))
        self.assertTrue(s.get("DynamicUser") == ["yes"] or s.get("User"))
        for key, want in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                          ("PrivateTmp", "yes"), ("PrivateDevices", "yes")):
            self.assertEqual(s.get(key), [want], key)
        self.assertEqual(self.sections["Install"]["WantedBy"], ["multi-user.target"])

    def test_env_file_names_are_dsrd_options(self):
        names = set(re.findall(r"^#?(DSR_[A-Z_]+)=", read("deploy/systemd/dsrd.env"), re.M))
        names |= {v.split("=")[0] for v in self.sections["Service"].get("Environment", [])}
        self.assertIn("DSR_MODEL", names)
        self.assertFalse(names - dsrd_env_names())

    @unittest.skipUnless(shutil.which("systemd-analyze"), "systemd-analyze not installed")
    def test_systemd_analyze_verify(self):
        dsrd = os.path.join(BUILD_DIR, "dsrd")
        with tempfile.TemporaryDirectory() as d:
            unit = read("deploy/systemd/dsrd.service").replace(
                "ExecStart=/usr/local/bin/dsrd", "ExecStart=" + os.path.abspath(dsrd))
            path = os.path.join(d, "dsrd.service")
            with open(path, "w") as f:
                f.write(unit)
            out = subprocess.run(["systemd-analyze", "verify", "--man=no", path],
                                 capture_output=True, text=True, timeout=60)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertNotIn("dsrd.service", out.stderr)


if __name__ == "__main__":
    unittest.main()
