package transport_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/cofactor-ml/cofactor/transport"
	"github.com/cofactor-ml/cofactor/transport/embedded"
)

// BenchmarkRowsExchange measures request/reply of one transport.FrameRows chunk of
// about 1 MiB (rank 64, as many rows as fit the server's default 1 MiB
// max_payload): the responder encodes the rows and the frame, the
// requester decodes and checks the frame and copies the rows out. MB/s
// counts payload bytes. "inproc" uses in-process connections, "tcp"
// loopback TCP; "par" runs concurrent requesters against two responders in
// a queue group.
func BenchmarkRowsExchange(b *testing.B) {
	for _, mode := range []string{"inproc", "tcp"} {
		b.Run(mode+"/seq", func(b *testing.B) { benchRowsExchange(b, mode, false) })
		b.Run(mode+"/par", func(b *testing.B) { benchRowsExchange(b, mode, true) })
	}
}

func benchRowsExchange(b *testing.B, mode string, parallel bool) {
	const k = 64
	e := startServer(b, embedded.Options{})
	dial := func() *nats.Conn {
		if mode == "inproc" {
			return connect(b, e)
		}
		nc, err := transport.Dial(e.ClientURL(), "bench")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(nc.Close)
		return nc
	}
	srv, cli := dial(), dial()
	perChunk := transport.RowsPerChunk(int(cli.MaxPayload()), k)
	factors := seqRows(perChunk * k)
	subject := transport.WorkerRowsSubject("bench")

	responders := 1
	if parallel {
		responders = 2
	}
	for range responders {
		var payload, frame []byte // reused: one handler call at a time per subscription
		_, err := srv.QueueSubscribe(subject, "rows", func(m *nats.Msg) {
			h, _, err := transport.DecodeFrame(m.Data)
			if err != nil {
				_ = m.Respond(transport.ErrorFrame(transport.Header{}, err.Error()))
				return
			}
			h.Type, h.Chunks, h.Rows, h.Cols = transport.FrameRows, 1, uint32(perChunk), k
			payload = transport.AppendFloat32s(payload[:0], factors)
			frame = transport.AppendFrame(frame[:0], h, payload)
			_ = m.Respond(frame)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	if err := srv.Flush(); err != nil {
		b.Fatal(err)
	}
	req := transport.AppendFrame(nil, transport.Header{Type: transport.FrameRowsRequest, Job: "bench", Iteration: 1, Cols: k}, nil)

	fetch := func(dst []float32) {
		msg, err := transport.Request(context.Background(), cli, subject, req, transport.DefaultRetry())
		if err != nil {
			b.Error(err)
			return
		}
		h, p, err := transport.DecodeFrame(msg.Data)
		if err != nil || h.Type != transport.FrameRows || int(h.Rows)*k != len(dst) {
			b.Errorf("bad answer %+v: %v", h, err)
			return
		}
		transport.DecodeFloat32s(dst, p)
	}
	b.SetBytes(int64(4 * len(factors)))
	b.ReportAllocs()
	b.ResetTimer()
	if !parallel {
		dst := make([]float32, len(factors))
		for b.Loop() {
			fetch(dst)
		}
		return
	}
	b.SetParallelism(2) // 2×GOMAXPROCS requesters
	b.RunParallel(func(pb *testing.PB) {
		dst := make([]float32, len(factors))
		for pb.Next() {
			fetch(dst)
		}
	})
}
