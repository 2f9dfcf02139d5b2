package docs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"gopkg.in/yaml.v3"

	cofactorapp "github.com/cofactor-ml/cofactor/cmd/cofactor/app"
)

// yamlDocs reads every YAML document of a file.
func yamlDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var docs []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
	return docs
}

// deployFiles lists the files under deploy/ whose names end in one of exts.
func deployFiles(t *testing.T, exts ...string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(repoRoot(t), "deploy"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		for _, e := range exts {
			if !d.IsDir() && strings.HasSuffix(p, e) {
				out = append(out, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// rel names a file relative to the repository for messages.
func rel(t *testing.T, p string) string {
	r, err := filepath.Rel(repoRoot(t), p)
	if err != nil {
		return p
	}
	return r
}

// Small accessors for decoded YAML.
func m(v any) map[string]any { x, _ := v.(map[string]any); return x }
func l(v any) []any          { x, _ := v.([]any); return x }
func s(v any) string         { x, _ := v.(string); return x }

func strs(v any) []string {
	var out []string
	for _, e := range l(v) {
		out = append(out, fmt.Sprint(e))
	}
	return out
}

func TestDeployYAMLParses(t *testing.T) {
	files := deployFiles(t, ".yaml", ".yml")
	if len(files) < 5 {
		t.Fatalf("only %d YAML files under deploy/", len(files))
	}
	for _, f := range files {
		if docs := yamlDocs(t, f); len(docs) == 0 {
			t.Errorf("%s: no YAML document", rel(t, f))
		}
	}
}

// checkArgv checks one command line and reports it with its place.
func checkArgv(t *testing.T, where string, argv []string) {
	t.Helper()
	if len(argv) == 0 {
		t.Errorf("%s: empty command", where)
		return
	}
	b := binaryName(argv[0])
	if b == "" {
		t.Errorf("%s: %q runs none of %v", where, argv[0], binaries)
		return
	}
	argv = append([]string{b}, argv[1:]...)
	if err := checkCommandLine(argv); err != nil {
		t.Errorf("%s: %s: %v", where, strings.Join(argv, " "), err)
	}
}

func TestComposeFile(t *testing.T) {
	path := filepath.Join(repoRoot(t), "deploy", "compose", "compose.yaml")
	docs := yamlDocs(t, path)
	if len(docs) != 1 {
		t.Fatalf("compose.yaml holds %d documents", len(docs))
	}
	services := m(docs[0]["services"])
	volumes := m(docs[0]["volumes"])
	for _, name := range []string{"secure-init", "nats1", "nats2", "nats3", "c1", "c2", "c3", "serve"} {
		if services[name] == nil {
			t.Errorf("no service %s", name)
		}
	}
	var workers []string
	for name, v := range services {
		svc := m(v)
		if svc["image"] == nil && svc["build"] == nil {
			t.Errorf("service %s has neither image nor build", name)
		}
		argv := append(strs(svc["entrypoint"]), strs(svc["command"])...)
		if len(argv) == 0 {
			t.Errorf("service %s names no command", name)
			continue
		}
		checkArgv(t, "compose.yaml service "+name, argv)
		if binaryName(argv[0]) == "worker" {
			workers = append(workers, name)
		}
		for dep := range m(svc["depends_on"]) {
			if services[dep] == nil {
				t.Errorf("service %s depends on missing service %s", name, dep)
			}
		}
		for _, vol := range strs(svc["volumes"]) {
			src, _, _ := strings.Cut(vol, ":")
			if !strings.HasPrefix(src, ".") && !strings.HasPrefix(src, "/") {
				if _, ok := volumes[src]; !ok {
					t.Errorf("service %s mounts undeclared volume %s", name, src)
				}
			} else if _, err := os.Stat(filepath.Join(filepath.Dir(path), src)); err != nil {
				t.Errorf("service %s mounts %s: %v", name, src, err)
			}
		}
	}
	// Three workers (or one service with three replicas), each with a
	// unique --id and the same shared volume at the same path.
	replicas := 0
	ids := map[string]bool{}
	var shared []string
	for _, name := range workers {
		svc := m(services[name])
		n := 1
		if r, ok := m(svc["deploy"])["replicas"].(int); ok {
			n = r
		}
		replicas += n
		argv := strs(svc["command"])
		if id := flagValue(argv, "--id"); id != "" {
			ids[id] = true
		}
		var mounts []string
		for _, v := range strs(svc["volumes"]) {
			if !strings.HasPrefix(v, ".") {
				mounts = append(mounts, v)
			}
		}
		slices.Sort(mounts)
		if shared == nil {
			shared = mounts
		} else if !slices.Equal(shared, mounts) {
			t.Errorf("worker %s mounts %v, another worker %v: inputs and outputs must be at the same path on every worker", name, mounts, shared)
		}
	}
	if replicas != 3 {
		t.Errorf("%d workers, want 3", replicas)
	}
	if len(workers) > 1 && len(ids) != len(workers) {
		t.Errorf("workers %v do not have distinct --id values", workers)
	}
	if len(shared) == 0 {
		t.Errorf("workers mount no shared volume for inputs and outputs")
	}
	// Coordinators: c1 bootstraps, c2 and c3 join it; addresses name the
	// service itself; each keeps its data on a volume of its own.
	dataVolumes := map[string]string{}
	for _, name := range []string{"c1", "c2", "c3"} {
		svc := m(services[name])
		argv := strs(svc["command"])
		if binaryName(firstOr(argv)) != "coordinator" {
			t.Errorf("service %s runs %v, not coordinator", name, argv)
			continue
		}
		bootstrap := slices.Contains(argv, "--bootstrap")
		join := flagValue(argv, "--join")
		switch {
		case name == "c1" && (!bootstrap || join != ""):
			t.Errorf("c1 must start the group with --bootstrap: %v", argv)
		case name != "c1" && (bootstrap || join != "https://c1:8080"):
			t.Errorf("%s must --join https://c1:8080: %v", name, argv)
		}
		for _, f := range []string{"--raft-addr", "--http-addr"} {
			if v := flagValue(argv, f); !strings.HasPrefix(v, name+":") {
				t.Errorf("%s %s %q: want %s:PORT (listened on and advertised)", name, f, v, name)
			}
		}
		if v := flagValue(argv, "--nats"); v != composeNATS {
			t.Errorf("%s --nats %q, want %s", name, v, composeNATS)
		}
		if v := flagValue(argv, "--replicas"); v != "3" {
			t.Errorf("%s --replicas %q, want 3 (one copy of each bucket on each NATS server)", name, v)
		}
		dataDir := flagValue(argv, "--data-dir")
		found := false
		for _, v := range strs(svc["volumes"]) {
			parts := strings.Split(v, ":")
			if len(parts) >= 2 && (dataDir == parts[1] || strings.HasPrefix(dataDir, parts[1]+"/")) {
				found = true
				if other, dup := dataVolumes[parts[0]]; dup {
					t.Errorf("%s and %s share the data volume %s", name, other, parts[0])
				}
				dataVolumes[parts[0]] = name
			}
		}
		if !found {
			t.Errorf("%s --data-dir %s is not on a volume", name, dataDir)
		}
		if m(svc["healthcheck"]) == nil {
			t.Errorf("%s has no healthcheck", name)
		}
	}
	// Three NATS servers, each named, on its own volume, with the
	// configuration secure-init writes: run that command into a
	// temporary directory and load what it writes as each server would.
	initArgv := strs(m(services["secure-init"])["command"])
	if len(initArgv) < 4 || initArgv[1] != "security" || initArgv[2] != "init" {
		t.Fatalf("secure-init runs %v, not cofactor security init DIR", initArgv)
	}
	secureDir := filepath.Join(t.TempDir(), "secure")
	runArgs := slices.Clone(initArgv[1:])
	runArgs[2] = secureDir
	runArgs = append(runArgs, "--config-dir", secureDir)
	for i := range runArgs {
		runArgs[i] = strings.ReplaceAll(runArgs[i], "$$", "$") // compose's escape
	}
	runCofactor(t, runArgs...)
	for _, name := range []string{"nats1", "nats2", "nats3"} {
		svc := m(services[name])
		if svc["healthcheck"] == nil {
			t.Errorf("%s has no healthcheck", name)
		}
		argv := strs(svc["command"])
		if conf := flagValue(argv, "--config"); conf != "/secure/nats.conf" {
			t.Errorf("%s runs %v, want nats-server --config /secure/nats.conf (from secure-init)", name, argv)
		}
		serverName := s(m(svc["environment"])["NATS_SERVER_NAME"])
		t.Setenv("NATS_SERVER_NAME", serverName)
		opts := checkNATSConfig(t, filepath.Join(secureDir, "nats.conf"))
		if opts == nil {
			continue
		}
		if opts.ServerName != name || len(opts.Routes) != 3 || opts.Cluster.TLSConfig == nil || opts.TLSConfig == nil {
			t.Errorf("%s: server name %q, %d routes, route TLS %v, client TLS %v; want %s, 3 routes, TLS on both", name, opts.ServerName, len(opts.Routes), opts.Cluster.TLSConfig != nil, opts.TLSConfig != nil, name)
		}
	}
	// Protected mode: whatever listens beyond loopback is secured; and
	// every file of /secure a service names is one secure-init writes.
	for name, v := range services {
		argv := append(strs(m(v)["entrypoint"]), strs(m(v)["command"])...)
		argv = append(argv, strs(m(m(v)["healthcheck"])["test"])...)
		checkSecured(t, "compose.yaml service "+name, argv)
		for _, a := range argv {
			if rest, ok := strings.CutPrefix(a, "/secure/"); ok {
				if _, err := os.Stat(filepath.Join(secureDir, rest)); err != nil {
					t.Errorf("service %s names %s, which secure-init does not write", name, a)
				}
			}
		}
	}
	serveArgv := append(strs(m(services["serve"])["entrypoint"]), strs(m(services["serve"])["command"])...)
	if len(serveArgv) < 2 || serveArgv[1] != "serve" {
		t.Errorf("service serve runs %v, not cofactor serve", serveArgv)
	}
}

func firstOr(a []string) string {
	if len(a) == 0 {
		return ""
	}
	return a[0]
}

// flagValue is the value of --name in argv ("" when absent).
func flagValue(argv []string, name string) string {
	for i, a := range argv {
		if a == name && i+1 < len(argv) {
			return argv[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

// composeNATS is the --nats list of compose's coordinators and workers.
const composeNATS = "nats://nats1:4222,nats://nats2:4222,nats://nats3:4222"

// runCofactor runs the cofactor command line in-process and fails the
// test unless it succeeds.
func runCofactor(t *testing.T, args ...string) {
	t.Helper()
	var errb strings.Builder
	cmd := cofactorapp.NewCommand(strings.NewReader(""), io.Discard, &errb)
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		t.Fatalf("cofactor %s: %v %s", strings.Join(args, " "), err, errb.String())
	}
}

// checkSecured checks that a coordinator or serve command line either
// secures what it listens on (HTTPS and a token; raft TLS) or is marked
// --insecure: protected mode would refuse it otherwise.
func checkSecured(t *testing.T, where string, argv []string) {
	t.Helper()
	if len(argv) == 0 || slices.Contains(argv, "--insecure") {
		return
	}
	var need []string
	switch {
	case binaryName(argv[0]) == "coordinator":
		need = []string{"--http-tls-cert", "--http-tls-key", "--admin-token-file", "--raft-tls-cert", "--raft-tls-key", "--raft-tls-ca"}
	case binaryName(argv[0]) == "cofactor" && len(argv) > 1 && argv[1] == "serve":
		need = []string{"--http-tls-cert", "--http-tls-key", "--read-token-file"}
	}
	for _, f := range need {
		if flagValue(argv, f) == "" {
			t.Errorf("%s: %s without %s (or --insecure): protected mode refuses it", where, strings.Join(argv, " "), f)
		}
	}
}

// checkNATSConfig parses a NATS configuration file with the server's own
// parser and checks that it enables JetStream with a store directory. It
// returns the options (nil when the file does not parse).
func checkNATSConfig(t *testing.T, path string) *server.Options {
	t.Helper()
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Errorf("NATS config %s: %v", rel(t, path), err)
		return nil
	}
	if !opts.JetStream || opts.StoreDir == "" {
		t.Errorf("NATS config %s: JetStream %v, store_dir %q: want JetStream on a store directory", rel(t, path), opts.JetStream, opts.StoreDir)
	}
	if opts.HTTPPort == 0 {
		t.Errorf("NATS config %s: no http_port (the health checks use /healthz)", rel(t, path))
	}
	return opts
}

// k8sObject is one Kubernetes manifest with where it came from.
type k8sObject struct {
	file string
	doc  map[string]any
}

func (o k8sObject) kind() string { return s(o.doc["kind"]) }
func (o k8sObject) name() string { return s(m(o.doc["metadata"])["name"]) }

// podSpec is the pod template's spec of a workload.
func (o k8sObject) podSpec() map[string]any {
	return m(m(m(o.doc["spec"])["template"])["spec"])
}

func (o k8sObject) podLabels() map[string]any {
	return m(m(m(m(o.doc["spec"])["template"])["metadata"])["labels"])
}

func TestKubernetesManifests(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "deploy", "kubernetes")
	var objs []k8sObject
	files := deployFiles(t, ".yaml")
	var k8sFiles []string
	for _, f := range files {
		if filepath.Dir(f) != dir {
			continue
		}
		k8sFiles = append(k8sFiles, filepath.Base(f))
		for _, d := range yamlDocs(t, f) {
			o := k8sObject{filepath.Base(f), d}
			if s(d["apiVersion"]) == "" || o.kind() == "" || o.name() == "" {
				t.Errorf("%s: a document lacks apiVersion, kind or metadata.name: %v", o.file, d)
			}
			objs = append(objs, o)
		}
	}
	byKind := map[string]map[string]k8sObject{}
	for _, o := range objs {
		if byKind[o.kind()] == nil {
			byKind[o.kind()] = map[string]k8sObject{}
		}
		byKind[o.kind()][o.name()] = o
	}

	// The kustomization lists every manifest.
	kz, ok := byKind["Kustomization"]["cofactor"]
	if !ok {
		t.Fatal("no kustomization.yaml with metadata.name cofactor")
	}
	listed := strs(kz.doc["resources"])
	for _, f := range k8sFiles {
		if f != "kustomization.yaml" && !slices.Contains(listed, f) {
			t.Errorf("kustomization.yaml does not list %s", f)
		}
	}
	for _, f := range listed {
		if !slices.Contains(k8sFiles, f) {
			t.Errorf("kustomization.yaml lists missing %s", f)
		}
	}

	// Coordinators: a StatefulSet of 3 with volume claims and a headless
	// governing Service.
	sts, ok := byKind["StatefulSet"]["coordinator"]
	if !ok {
		t.Fatal("no StatefulSet coordinator")
	}
	spec := m(sts.doc["spec"])
	if r, _ := spec["replicas"].(int); r != 3 {
		t.Errorf("StatefulSet coordinator has %v replicas, want 3", spec["replicas"])
	}
	if len(l(spec["volumeClaimTemplates"])) == 0 {
		t.Errorf("StatefulSet coordinator has no volumeClaimTemplates")
	}
	gov, ok := byKind["Service"][s(spec["serviceName"])]
	if !ok {
		t.Errorf("StatefulSet coordinator's serviceName %q is no Service", spec["serviceName"])
	} else if s(m(gov.doc["spec"])["clusterIP"]) != "None" {
		t.Errorf("Service %s governing the coordinators is not headless", gov.name())
	}
	for _, want := range []struct{ kind, name string }{
		{"Service", "coordinator"}, {"Deployment", "worker"}, {"Deployment", "serve"}, {"Service", "serve"},
		{"Service", "nats"}, {"Service", "nats-cluster"}, {"PersistentVolumeClaim", "cofactor-shared"},
	} {
		if _, ok := byKind[want.kind][want.name]; !ok {
			t.Errorf("no %s %s", want.kind, want.name)
		}
	}
	if nats, ok := byKind["StatefulSet"]["nats"]; !ok {
		if _, ok := byKind["Deployment"]["nats"]; !ok {
			t.Errorf("no NATS StatefulSet or Deployment")
		}
	} else {
		if len(l(m(nats.doc["spec"])["volumeClaimTemplates"])) == 0 {
			t.Errorf("StatefulSet nats has no volume for JetStream")
		}
		if r, _ := m(nats.doc["spec"])["replicas"].(int); r != 3 {
			t.Errorf("StatefulSet nats has %v replicas, want 3 (JetStream R3)", m(nats.doc["spec"])["replicas"])
		}
	}
	if pvc, ok := byKind["PersistentVolumeClaim"]["cofactor-shared"]; ok {
		if !slices.Contains(strs(m(pvc.doc["spec"])["accessModes"]), "ReadWriteMany") {
			t.Errorf("PersistentVolumeClaim cofactor-shared is not ReadWriteMany")
		}
	}

	// The Secret's NATS configuration, made by the `cofactor security
	// init` line of kustomization.yaml, parses with the server's own
	// parser for each of the three servers: a cluster of three with TLS.
	checkKustomizeSecurityInit(t, filepath.Join(dir, "kustomization.yaml"))

	// Workloads: their commands and flags exist, what they mount exists,
	// Services select them and name their ports, and the workers mount
	// the shared volume.
	var workloads []k8sObject
	for _, kind := range []string{"StatefulSet", "Deployment"} {
		for _, o := range byKind[kind] {
			workloads = append(workloads, o)
		}
	}
	for _, o := range workloads {
		ps := o.podSpec()
		where := o.file + " " + o.kind() + " " + o.name()
		if ps == nil {
			t.Errorf("%s: no pod template", where)
			continue
		}
		if sel := m(m(m(o.doc["spec"])["selector"])["matchLabels"]); !labelsMatch(sel, o.podLabels()) {
			t.Errorf("%s: selector %v does not match the pod labels %v", where, sel, o.podLabels())
		}
		volumes := map[string]bool{}
		for _, v := range l(ps["volumes"]) {
			v := m(v)
			volumes[s(v["name"])] = true
			if cm := m(v["configMap"]); cm != nil {
				if _, ok := byKind["ConfigMap"][s(cm["name"])]; !ok {
					t.Errorf("%s: volume %s names missing ConfigMap %s", where, v["name"], cm["name"])
				}
			}
			if pvc := m(v["persistentVolumeClaim"]); pvc != nil {
				if _, ok := byKind["PersistentVolumeClaim"][s(pvc["claimName"])]; !ok {
					t.Errorf("%s: volume %s names missing PersistentVolumeClaim %s", where, v["name"], pvc["claimName"])
				}
			}
		}
		for _, c := range l(m(o.doc["spec"])["volumeClaimTemplates"]) {
			volumes[s(m(m(c)["metadata"])["name"])] = true
		}
		for _, c := range l(ps["containers"]) {
			c := m(c)
			cwhere := where + " container " + s(c["name"])
			for _, vm := range l(c["volumeMounts"]) {
				if !volumes[s(m(vm)["name"])] {
					t.Errorf("%s: mounts undefined volume %s", cwhere, m(vm)["name"])
				}
			}
			argv := append(strs(c["command"]), strs(c["args"])...)
			if len(argv) == 2 && argv[0] == "/bin/sh" {
				// An entrypoint script from a ConfigMap: check its commands.
				checkEntrypointScript(t, cwhere, byKind["ConfigMap"], c, ps, argv[1])
				continue
			}
			checkArgv(t, cwhere, argv)
			checkSecured(t, cwhere, argv)
		}
		if o.name() == "worker" && !mountsClaim(ps, "cofactor-shared") {
			t.Errorf("%s: workers do not mount the shared volume cofactor-shared", where)
		}
	}
	for _, svc := range byKind["Service"] {
		sel := m(m(svc.doc["spec"])["selector"])
		var target *k8sObject
		for i, o := range workloads {
			if labelsMatch(sel, o.podLabels()) {
				target = &workloads[i]
			}
		}
		if target == nil {
			t.Errorf("Service %s selects no workload (selector %v)", svc.name(), sel)
			continue
		}
		ports := map[string]bool{}
		for _, c := range l(target.podSpec()["containers"]) {
			for _, p := range l(m(c)["ports"]) {
				ports[s(m(p)["name"])] = true
				ports[fmt.Sprint(m(p)["containerPort"])] = true
			}
		}
		for _, p := range l(m(svc.doc["spec"])["ports"]) {
			if tp := fmt.Sprint(m(p)["targetPort"]); !ports[tp] {
				t.Errorf("Service %s: targetPort %s is no port of %s", svc.name(), tp, target.name())
			}
		}
	}

	// kubectl, when installed, renders the kustomization offline.
	if kubectl, err := exec.LookPath("kubectl"); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, kubectl, "kustomize", dir).CombinedOutput()
		if err != nil {
			t.Errorf("kubectl kustomize deploy/kubernetes: %v\n%s", err, out)
		}
	}
}

// checkKustomizeSecurityInit runs the `cofactor security init` command
// kustomization.yaml documents into a temporary directory and loads its
// nats.conf as each of the three servers would.
func checkKustomizeSecurityInit(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var argv []string
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(strings.TrimPrefix(line, "#")), "cofactor security init "); ok {
			argv = strings.Fields(rest)
		}
	}
	if len(argv) == 0 {
		t.Errorf("%s shows no `cofactor security init` line", rel(t, path))
		return
	}
	secureDir := filepath.Join(t.TempDir(), "secure")
	argv[0] = secureDir
	runCofactor(t, append(append([]string{"security", "init"}, argv...), "--config-dir", secureDir)...)
	for _, name := range []string{"nats-0", "nats-1", "nats-2"} {
		t.Setenv("NATS_SERVER_NAME", name)
		opts := checkNATSConfig(t, filepath.Join(secureDir, "nats.conf"))
		if opts != nil && (opts.ServerName != name || len(opts.Routes) != 3 || opts.Cluster.TLSConfig == nil) {
			t.Errorf("%s: server name %q, %d routes, route TLS %v", name, opts.ServerName, len(opts.Routes), opts.Cluster.TLSConfig != nil)
		}
	}
}

func labelsMatch(selector, labels map[string]any) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func mountsClaim(ps map[string]any, claim string) bool {
	for _, v := range l(ps["volumes"]) {
		if s(m(m(v)["persistentVolumeClaim"])["claimName"]) == claim {
			return true
		}
	}
	return false
}

// checkEntrypointScript finds the script a container runs in a mounted
// ConfigMap, checks its shell syntax and the command lines it runs, and
// that the environment it needs is set.
func checkEntrypointScript(t *testing.T, where string, configMaps map[string]k8sObject, c, ps map[string]any, path string) {
	t.Helper()
	var script string
	for _, vm := range l(c["volumeMounts"]) {
		dir := s(m(vm)["mountPath"])
		if filepath.Dir(path) != dir {
			continue
		}
		for _, v := range l(ps["volumes"]) {
			if s(m(v)["name"]) == s(m(vm)["name"]) {
				cm := configMaps[s(m(m(v)["configMap"])["name"])]
				script = s(m(cm.doc["data"])[filepath.Base(path)])
			}
		}
	}
	if script == "" {
		t.Errorf("%s: runs %s, which no mounted ConfigMap holds", where, path)
		return
	}
	if sh, err := exec.LookPath("sh"); err == nil {
		cmd := exec.Command(sh, "-n")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: %s: sh -n: %v\n%s", where, path, err, out)
		}
	}
	cmds := ourCommands(splitShell(path, 1, script))
	if len(cmds) == 0 {
		t.Errorf("%s: %s runs no cofactor binary", where, path)
	}
	for _, cl := range cmds {
		checkArgv(t, where+" "+cl.where, cl.argv)
		checkSecured(t, where+" "+cl.where, cl.argv)
	}
	env := map[string]bool{}
	for _, e := range l(c["env"]) {
		env[s(m(e)["name"])] = true
	}
	for _, need := range regexp.MustCompile(`\$\{([A-Z_]+):\?\}`).FindAllStringSubmatch(script, -1) {
		if !env[need[1]] {
			t.Errorf("%s: %s needs $%s, which the container does not set", where, path, need[1])
		}
	}
}

// iniFile is a parsed systemd unit: section → key → values in order.
type iniFile map[string]map[string][]string

func parseUnit(t *testing.T, path string) iniFile {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := iniFile{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	var cont string
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if cont != "" {
			line = cont + " " + line
			cont = ""
		}
		if strings.HasSuffix(line, `\`) {
			cont = strings.TrimSuffix(line, `\`)
			continue
		}
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Errorf("%s:%d: not a key=value line in a section: %q", rel(t, path), n, line)
				continue
			}
			u[section][strings.TrimSpace(k)] = append(u[section][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return u
}

// envFile reads KEY=VALUE lines.
func envFile(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("%s: not KEY=VALUE: %q", rel(t, path), line)
			continue
		}
		env[k] = strings.Trim(v, `"'`)
	}
	return env
}

func TestSystemdUnits(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "deploy", "systemd")
	units := map[string]struct {
		binary, sub, env string
	}{
		"cofactor-coordinator@.service": {"coordinator", "", "coordinator.env.example"},
		"cofactor-worker@.service":      {"worker", "", "worker.env.example"},
		"cofactor-serve.service":        {"cofactor", "serve", "serve.env.example"},
	}
	for name, want := range units {
		path := filepath.Join(dir, name)
		u := parseUnit(t, path)
		for _, sec := range []string{"Unit", "Service", "Install"} {
			if u[sec] == nil {
				t.Errorf("%s: no [%s] section", name, sec)
			}
		}
		svc := u["Service"]
		one := func(k string) string {
			if v := svc[k]; len(v) > 0 {
				return v[len(v)-1]
			}
			return ""
		}
		for k, v := range map[string]string{
			"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
			"CapabilityBoundingSet": "", "RestrictNamespaces": "yes", "LockPersonality": "yes",
		} {
			if _, ok := svc[k]; !ok || one(k) != v {
				t.Errorf("%s: %s=%q, want %q (present: %v)", name, k, one(k), v, ok)
			}
		}
		if !strings.Contains(one("RestrictAddressFamilies"), "AF_INET") {
			t.Errorf("%s: RestrictAddressFamilies=%q", name, one("RestrictAddressFamilies"))
		}
		if !slices.Contains(svc["SystemCallFilter"], "@system-service") {
			t.Errorf("%s: SystemCallFilter does not allow-list @system-service", name)
		}
		if one("DynamicUser") != "yes" && one("User") == "" {
			t.Errorf("%s: neither DynamicUser=yes nor a User", name)
		}
		if want.binary != "cofactor" && one("StateDirectory") == "" {
			t.Errorf("%s: no StateDirectory for its data", name)
		}
		if one("EnvironmentFile") == "" {
			t.Errorf("%s: no EnvironmentFile", name)
		}
		exec := one("ExecStart")
		argv := strings.Fields(exec)
		if len(argv) == 0 || !strings.HasPrefix(argv[0], "/") {
			t.Errorf("%s: ExecStart=%q does not start with an absolute path", name, exec)
			continue
		}
		if b := binaryName(argv[0]); b != want.binary {
			t.Errorf("%s: ExecStart runs %s, want %s", name, argv[0], want.binary)
			continue
		}
		if want.sub != "" && (len(argv) < 2 || argv[1] != want.sub) {
			t.Errorf("%s: ExecStart=%q does not run %s %s", name, exec, want.binary, want.sub)
		}
		checkArgv(t, name+" ExecStart", argv)
		// Every variable ExecStart uses is set by the example environment
		// file, whose flags exist too.
		env := envFile(t, filepath.Join(dir, want.env))
		for _, v := range regexp.MustCompile(`\$\{?([A-Z_]+)\}?`).FindAllStringSubmatch(exec, -1) {
			val, ok := env[v[1]]
			if !ok {
				t.Errorf("%s: ExecStart uses $%s, which %s does not set", name, v[1], want.env)
				continue
			}
			if strings.HasPrefix(val, "-") {
				extra := append([]string{want.binary}, strings.Fields(val)...)
				if want.sub != "" {
					extra = slices.Insert(extra, 1, want.sub)
				}
				checkArgv(t, want.env+" "+v[1], extra)
			}
		}
		// The whole command line with the example's values is secured
		// (protected mode would refuse it otherwise).
		full := regexp.MustCompile(`\$\{?([A-Z_]+)\}?`).ReplaceAllStringFunc(exec, func(v string) string {
			return env[strings.Trim(v, "${}")]
		})
		checkSecured(t, name+" ExecStart with "+want.env, strings.Fields(full))
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, ok := units[e.Name()]; !ok && strings.HasSuffix(e.Name(), ".service") {
			t.Errorf("%s is not checked by this test", e.Name())
		}
	}
	verifyUnits(t, dir)
}

// verifyUnits runs systemd-analyze verify, when installed, on instances of
// the units whose binaries point at freshly built ones.
func verifyUnits(t *testing.T, dir string) {
	if testing.Short() {
		t.Log("systemd-analyze verify skipped with -short (it needs the binaries built)")
		return
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: units checked by this test only")
		return
	}
	bin := buildCmdBinaries(t)
	tmp := t.TempDir()
	var names []string
	for src, inst := range map[string]string{
		"cofactor-coordinator@.service": "cofactor-coordinator@c1.service",
		"cofactor-worker@.service":      "cofactor-worker@w1.service",
		"cofactor-serve.service":        "cofactor-serve.service",
	} {
		data, err := os.ReadFile(filepath.Join(dir, src))
		if err != nil {
			t.Fatal(err)
		}
		data = bytes.ReplaceAll(data, []byte("/usr/local/bin/"), []byte(bin+"/"))
		if err := os.WriteFile(filepath.Join(tmp, inst), data, 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, filepath.Join(tmp, inst))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, analyze, append([]string{"verify", "--man=no"}, names...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, tmp) || strings.Contains(line, "cofactor-") {
			t.Errorf("systemd-analyze verify: %s", line)
		}
	}
}
