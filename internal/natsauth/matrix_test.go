package natsauth_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/dataset"
	"github.com/cofactor-ml/cofactor/internal/natsauth"
	"github.com/cofactor-ml/cofactor/internal/wire"
)

// A verb is one JetStream API request (or data publish) about a stream:
// subject builds its subject from the stream and bucket names.
type verb struct {
	name    string
	subject func(stream, bucket string) string
}

func api(path string) verb {
	return verb{path, func(s, _ string) string { return "$JS.API." + path + "." + s }}
}

func apiConsumer(path string) verb {
	return verb{path, func(s, _ string) string { return "$JS.API." + path + "." + s + ".c1" }}
}

// streamVerbs is every request nats-server 2.15 answers about one stream
// (server/jetstream_api.go), and the data subjects of a bucket.
var streamVerbs = []verb{
	api("STREAM.INFO"), api("STREAM.CREATE"), api("STREAM.UPDATE"), api("STREAM.DELETE"),
	api("STREAM.PURGE"), api("STREAM.SNAPSHOT"), api("STREAM.RESTORE"), api("STREAM.MSG.DELETE"),
	api("STREAM.MSG.GET"), api("STREAM.LEADER.STEPDOWN"), api("STREAM.PEER.REMOVE"),
	api("STREAM.PEER.EVACUATE"), api("STREAM.CANCEL_MOVE"),
	api("DIRECT.GET"),
	{"DIRECT.GET.<subject>", func(s, b string) string { return "$JS.API.DIRECT.GET." + s + "." + dataSubject(s, b, "k") }},
	api("CONSUMER.CREATE"),
	{"CONSUMER.CREATE.<name>.<filter>", func(s, b string) string { return "$JS.API.CONSUMER.CREATE." + s + ".c1." + dataSubject(s, b, "k") }},
	apiConsumer("CONSUMER.DURABLE.CREATE"), api("CONSUMER.NAMES"), api("CONSUMER.LIST"),
	apiConsumer("CONSUMER.INFO"), apiConsumer("CONSUMER.DELETE"), apiConsumer("CONSUMER.PAUSE"),
	apiConsumer("CONSUMER.UNPIN"), apiConsumer("CONSUMER.RESET"), apiConsumer("CONSUMER.MSG.NEXT"),
	apiConsumer("CONSUMER.LEADER.STEPDOWN"), apiConsumer("CONSUMER.PEER.REMOVE"),
	apiConsumer("CONSUMER.PEER.EVACUATE"),
	{"ACCOUNT.STREAM.MOVE", func(s, _ string) string { return "$JS.API.ACCOUNT.STREAM.MOVE.$G." + s }},
	{"ACCOUNT.STREAM.CANCEL_MOVE", func(s, _ string) string { return "$JS.API.ACCOUNT.STREAM.CANCEL_MOVE.$G." + s }},
	{"publish an entry", func(s, b string) string { return dataSubject(s, b, "k") }},
	{"publish object metadata", func(s, b string) string {
		if strings.HasPrefix(s, "KV_") {
			return "$KV." + b + ".M.k"
		}
		return "$O." + b + ".M.k"
	}},
}

// accountVerbs are the requests about no stream in particular.
var accountVerbs = []string{
	"$JS.API.INFO", "$JS.API.STREAM.NAMES", "$JS.API.STREAM.LIST", "$JS.API.META.LEADER.STEPDOWN",
	"$JS.API.META.RESCUE", "$JS.API.SERVER.REMOVE", "$JS.API.SERVER.EVACUATE", "$JS.API.ACCOUNT.PURGE.$G",
}

func dataSubject(stream, bucket, key string) string {
	if strings.HasPrefix(stream, "KV_") {
		return "$KV." + bucket + "." + key
	}
	return "$O." + bucket + ".C." + key
}

// readVerbs are what Read grants: look up, get, and read through
// ephemeral consumers.
var readVerbs = []string{"STREAM.INFO", "STREAM.MSG.GET", "DIRECT.GET", "DIRECT.GET.<subject>",
	"CONSUMER.CREATE", "CONSUMER.CREATE.<name>.<filter>", "CONSUMER.DELETE"}

// allowed is the documented policy (docs/security.md), written out here
// independently of natsauth's table: what a worker and a client may
// publish about each bucket. Coordinators may publish everything.
func allowed(role natsauth.Role, bucket, verb string) bool {
	read := slices.Contains(readVerbs, verb)
	write := read || verb == "publish an entry" || verb == "publish object metadata"
	switch role {
	case natsauth.Coordinator:
		return true
	case natsauth.Worker:
		switch bucket {
		case wire.BlockBucket:
			return write || verb == "STREAM.PURGE"
		case checkpoint.SnapshotBucket:
			return write
		case checkpoint.LatestBucket, dataset.Bucket:
			return read
		}
	case natsauth.Client:
		switch bucket {
		case checkpoint.SnapshotBucket, checkpoint.LatestBucket:
			return read
		case dataset.Bucket:
			return write || verb == "STREAM.PURGE"
		}
	}
	return false
}

// refused publishes subject (as a request) and reports whether the server
// refused it. The flush is a round trip: the server has handled the
// publish, and sent its permission error if any, before it answers.
func refused(t *testing.T, nc *nats.Conn, subject string) bool {
	t.Helper()
	if err := nc.PublishRequest(subject, nc.NewRespInbox(), []byte("x")); err != nil {
		t.Fatalf("publish %s: %v", subject, err)
	}
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		t.Fatalf("flush after %s: %v", subject, err)
	}
	last := nc.LastError()
	return last != nil && strings.Contains(last.Error(), "Permissions Violation") && strings.Contains(last.Error(), `"`+subject+`"`)
}

// TestJetStreamMatrix: every JetStream API verb × every role × every
// bucket (and a stream that is no bucket), against a real nats-server
// loaded from the generated configuration. The server holds no stream,
// so the coordinator's allowed requests change nothing.
func TestJetStreamMatrix(t *testing.T) {
	s := startSecure(t)
	other := natsauth.Bucket{Name: "forged"}
	buckets := append(slices.Clone(natsauth.Buckets), other)
	cells, refusals := 0, 0
	for _, role := range natsauth.Roles {
		nc, _ := s.connect(t, role)
		for _, b := range buckets {
			for _, v := range streamVerbs {
				subj := v.subject(b.Stream(), b.Name)
				want := allowed(role, b.Name, v.name)
				got := !refused(t, nc, subj)
				cells++
				if !got {
					refusals++
				}
				if got != want {
					t.Errorf("%s %s on %s (%s): allowed=%v, want %v", role, v.name, b.Name, subj, got, want)
				}
				if got && natsauth.Grant(role, b.Name) == natsauth.NoAccess && role != natsauth.Coordinator {
					t.Errorf("%s may %s on %s, which it has no grant for", role, v.name, b.Name)
				}
			}
		}
		for _, subj := range accountVerbs {
			want := role == natsauth.Coordinator
			got := !refused(t, nc, subj)
			cells++
			if !got {
				refusals++
			}
			if got != want {
				t.Errorf("%s %s: allowed=%v, want %v", role, subj, got, want)
			}
		}
	}
	t.Logf("%d cells (%d verbs × %d roles × %d streams + %d account requests × %d roles), %d refused",
		cells, len(streamVerbs), len(natsauth.Roles), len(buckets), len(accountVerbs), len(natsauth.Roles), refusals)
}

// TestSubscribeMatrix: no role but the coordinator listens to heartbeats
// or reports, and none may eavesdrop on JetStream's API or data subjects
// (reads arrive on the role's own inbox).
func TestSubscribeMatrix(t *testing.T) {
	s := startSecure(t)
	subjects := []string{"$JS.API.>", "$JS.EVENT.>", "$O.>", "$KV.>", "cofactor.hb.*", "cofactor.hb.w1", "cofactor.coord.report.*", "cofactor.coord.report.w1", "cofactor.w.w1.cmd", "cofactor.w.w1.rows", "_INBOX.x"}
	want := map[natsauth.Role][]string{
		natsauth.Coordinator: {"cofactor.hb.*", "cofactor.hb.w1", "cofactor.coord.report.*", "cofactor.coord.report.w1", "_INBOX.x"},
		natsauth.Worker:      {"cofactor.w.w1.cmd", "cofactor.w.w1.rows", "_INBOX.x"},
		natsauth.Client:      {"_INBOX.x"},
	}
	for _, role := range natsauth.Roles {
		nc, _ := s.connect(t, role)
		for _, subj := range subjects {
			sub, err := nc.SubscribeSync(subj)
			if err != nil {
				t.Fatal(err)
			}
			if err := nc.FlushTimeout(5 * time.Second); err != nil {
				t.Fatal(err)
			}
			last := nc.LastError()
			got := last == nil || !strings.Contains(last.Error(), `"`+subj+`"`)
			if got != slices.Contains(want[role], subj) {
				t.Errorf("%s subscribing to %s: allowed=%v", role, subj, got)
			}
			sub.Unsubscribe()
		}
	}
}

// TestForgery replays the attacks a worker's and a client's identity could
// make when the roles matched any verb on a bucket's stream: rewrite the
// pointer bucket's stream so that a subject the worker may publish lands
// in it as a model pointer, create a stream that republishes into it, and
// purge or update the snapshot bucket. Each is refused, and the pointer
// and the snapshot stay as the coordinator wrote them.
func TestForgery(t *testing.T) {
	s := startSecure(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	coord, _ := s.connect(t, natsauth.Coordinator)
	if err := natsauth.EnsureBuckets(ctx, coord, 1); err != nil {
		t.Fatal(err)
	}
	cs, err := checkpoint.OpenBlobStore(ctx, coord)
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.Put(ctx, "s1/manifest.json", []byte(`{"ok":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := cs.SetLatest(ctx, "default", "s1"); err != nil {
		t.Fatal(err)
	}
	cjs, _ := jetstream.New(coord)
	kvStream := "KV_" + checkpoint.LatestBucket
	before, err := cjs.Stream(ctx, kvStream)
	if err != nil {
		t.Fatal(err)
	}
	beforeCfg := before.CachedInfo().Config

	// The worker's and the client's view of the stream: allowed (Read).
	forgeFrom := "cofactor.w.forger.rows" // a subject a worker may publish
	pointer := "$KV." + checkpoint.LatestBucket + ".latest.default"
	transformed := beforeCfg
	transformed.Subjects = append(slices.Clone(beforeCfg.Subjects), forgeFrom)
	transformed.SubjectTransform = &jetstream.SubjectTransformConfig{Source: forgeFrom, Destination: pointer}
	update, _ := json.Marshal(transformed)
	republish, _ := json.Marshal(jetstream.StreamConfig{
		Name: "FORGE", Subjects: []string{forgeFrom}, Storage: jetstream.MemoryStorage,
		RePublish: &jetstream.RePublish{Source: forgeFrom, Destination: pointer},
	})
	attacks := []struct {
		role    natsauth.Role
		subject string
		body    []byte
	}{
		{natsauth.Worker, "$JS.API.STREAM.UPDATE." + kvStream, update},
		{natsauth.Worker, "$JS.API.STREAM.CREATE.FORGE", republish},
		{natsauth.Worker, "$JS.API.STREAM.PURGE.OBJ_" + checkpoint.SnapshotBucket, nil},
		{natsauth.Worker, "$JS.API.STREAM.UPDATE.OBJ_" + checkpoint.SnapshotBucket, nil},
		{natsauth.Worker, "$JS.API.STREAM.DELETE.OBJ_" + wire.BlockBucket, nil},
		{natsauth.Worker, "$JS.API.STREAM.PURGE." + kvStream, nil},
		{natsauth.Client, "$JS.API.STREAM.UPDATE." + kvStream, update},
		{natsauth.Client, "$JS.API.STREAM.UPDATE.OBJ_" + checkpoint.SnapshotBucket, nil},
		{natsauth.Client, "$JS.API.STREAM.CREATE.FORGE", republish},
	}
	conns := map[natsauth.Role]*nats.Conn{}
	for _, a := range attacks {
		nc := conns[a.role]
		if nc == nil {
			nc, _ = s.connect(t, a.role)
			conns[a.role] = nc
		}
		_, err := nc.Request(a.subject, a.body, 500*time.Millisecond)
		if err == nil {
			t.Errorf("%s %s answered", a.role, a.subject)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		if last := nc.LastError(); last == nil || !strings.Contains(last.Error(), a.subject) {
			t.Errorf("%s %s: no permission violation (last error %v)", a.role, a.subject, last)
		}
	}
	// The worker publishes its forged pointer on the subject the attack
	// would have routed into the bucket.
	if err := conns[natsauth.Worker].Publish(forgeFrom, []byte("forged")); err != nil {
		t.Fatal(err)
	}
	conns[natsauth.Worker].Flush()
	// The worker's own client library path: it cannot update the bucket.
	wjs, _ := jetstream.New(conns[natsauth.Worker])
	uctx, ucancel := context.WithTimeout(ctx, time.Second)
	_, err = wjs.UpdateStream(uctx, transformed)
	ucancel()
	if err == nil {
		t.Error("the worker updated the pointer stream through jetstream")
	}

	after, err := cjs.Stream(ctx, kvStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := after.CachedInfo().Config; !slices.Equal(got.Subjects, beforeCfg.Subjects) || got.SubjectTransform != nil {
		t.Errorf("pointer stream changed: subjects %v, transform %+v", got.Subjects, got.SubjectTransform)
	}
	if _, err := cjs.Stream(ctx, "FORGE"); err == nil {
		t.Error("a forging stream exists")
	}
	if id, err := cs.Latest(ctx, "default"); err != nil || id != "s1" {
		t.Errorf("pointer: %q, %v; want s1", id, err)
	}
	if b, err := cs.Get(ctx, "s1/manifest.json", 1<<20); err != nil || string(b) != `{"ok":1}` {
		t.Errorf("snapshot file: %q, %v", b, err)
	}
	blocks, err := cjs.Stream(ctx, "OBJ_"+wire.BlockBucket)
	if err != nil || blocks == nil {
		t.Errorf("block bucket: %v", err)
	}
	t.Logf("%d attacks refused; pointer s1, snapshot readable", len(attacks))
}
