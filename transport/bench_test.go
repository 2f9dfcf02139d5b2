package transport

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
)

// BenchmarkRowsExchange measures request/reply of one FrameRows chunk of
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
	e := startServer(b, EmbeddedOptions{})
	dial := func() *nats.Conn {
		if mode == "inproc" {
			return connect(b, e)
		}
		nc, err := Dial(e.ClientURL(), "bench")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(nc.Close)
		return nc
	}
	srv, cli := dial(), dial()
	perChunk := RowsPerChunk(int(cli.MaxPayload()), k)
	factors := seqFloat32s(perChunk * k)
	subject := WorkerRowsSubject("bench")

	responders := 1
	if parallel {
		responders = 2
	}
	for range responders {
		var payload, frame []byte // reused: one handler call at a time per subscription
		_, err := srv.QueueSubscribe(subject, "rows", func(m *nats.Msg) {
			h, _, err := DecodeFrame(m.Data)
			if err != nil {
				_ = m.Respond(ErrorFrame(Header{}, err.Error()))
				return
			}
			h.Type, h.Chunks, h.Rows, h.Cols = FrameRows, 1, uint32(perChunk), k
			payload = AppendFloat32s(payload[:0], factors)
			frame = AppendFrame(frame[:0], h, payload)
			_ = m.Respond(frame)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	if err := srv.Flush(); err != nil {
		b.Fatal(err)
	}
	req := AppendFrame(nil, Header{Type: FrameRowsRequest, Job: "bench", Iteration: 1, Cols: k}, nil)

	fetch := func(dst []float32) {
		msg, err := Request(context.Background(), cli, subject, req, DefaultRetry())
		if err != nil {
			b.Error(err)
			return
		}
		h, p, err := DecodeFrame(msg.Data)
		if err != nil || h.Type != FrameRows || int(h.Rows)*k != len(dst) {
			b.Errorf("bad answer %+v: %v", h, err)
			return
		}
		DecodeFloat32s(dst, p)
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
