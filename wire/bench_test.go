package wire_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/phxgo/phxgo/wire"
)

// benchFrame returns a V2 text broadcast of exactly size bytes. A dense
// payload is a list of small chat messages (many short tokens: the worst
// case for a scanner that touches every byte, the best for the baseline's
// ratio); otherwise it is one message with a long text body.
func benchFrame(size int, dense bool) []byte {
	const head = `[null,null,"room:lobby","new_msg",`
	var p strings.Builder
	p.WriteString(`{"messages":[`)
	for i := 0; p.Len()+len(head)+200 < size; i++ {
		if i > 0 {
			p.WriteByte(',')
		}
		fmt.Fprintf(&p, `{"id":%d,"user":"user_%d","body":"hello from the lobby, message number %d","ts":1795316680%03d,"seen":true,"tags":["chat","en"],"meta":{"edited":null,"score":%d.5}}`, i, i%7, i, i, i)
	}
	p.WriteString(`],"pad":"`)
	pad := size - len(head) - p.Len() - len(`"}]`)
	if pad < 0 || !dense {
		// Small frames: a single short body.
		p.Reset()
		p.WriteString(`{"body":"`)
		pad = size - len(head) - p.Len() - len(`","user":"alice"}]`)
		const text = "Phoenix Channels carry soft-realtime messages between clients and servers. "
		p.WriteString(strings.Repeat(text, pad/len(text)+1)[:pad])
		p.WriteString(`","user":"alice"}`)
	} else {
		p.WriteString(strings.Repeat("x", pad))
		p.WriteString(`"}`)
	}
	f := head + p.String() + "]"
	if len(f) != size || !json.Valid([]byte(f)) {
		panic(fmt.Sprintf("bench frame of %d bytes: %d %s", size, len(f), f))
	}
	return []byte(f)
}

var benchSizes = []struct {
	name  string
	size  int
	dense bool
}{{"100B", 100, false}, {"4KB", 4096, true}, {"4KB_text", 4096, false}}

var sinkMsg wire.Message

func BenchmarkDecodeV2(b *testing.B) {
	for _, bs := range benchSizes {
		frame := benchFrame(bs.size, bs.dense)
		b.Run(bs.name+"/wire", func(b *testing.B) {
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				m, err := wire.V2.DecodeServer(wire.Text, frame)
				if err != nil {
					b.Fatal(err)
				}
				sinkMsg = m
			}
		})
		b.Run(bs.name+"/envelope", func(b *testing.B) {
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				m, err := wire.DecodeEnvelope(wire.Text, frame)
				if err != nil {
					b.Fatal(err)
				}
				sinkMsg = m
			}
		})
		b.Run(bs.name+"/baseline_json_any", func(b *testing.B) {
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				var v []any
				if err := json.Unmarshal(frame, &v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeBinary(b *testing.B) {
	for _, bs := range benchSizes {
		text := benchFrame(bs.size, bs.dense)
		m, _ := wire.V2.DecodeServer(wire.Text, text)
		m.Binary = true
		frame, _, err := wire.V2.EncodeServer(nil, &m)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bs.name+"/wire", func(b *testing.B) {
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				m, err := wire.V2.DecodeServer(wire.Binary, frame)
				if err != nil {
					b.Fatal(err)
				}
				sinkMsg = m
			}
		})
		b.Run(bs.name+"/baseline_json_any", func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			for b.Loop() {
				var v []any
				if err := json.Unmarshal(text, &v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncodeV2(b *testing.B) {
	for _, bs := range benchSizes {
		frame := benchFrame(bs.size, bs.dense)
		m, _ := wire.V2.DecodeServer(wire.Text, frame)
		m.Payload = append([]byte(nil), m.Payload...)
		buf := make([]byte, 0, 2*len(frame))
		b.Run(bs.name+"/wire", func(b *testing.B) {
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				out, _, err := wire.V2.EncodeServer(buf[:0], &m)
				if err != nil {
					b.Fatal(err)
				}
				buf = out
			}
		})
		b.Run(bs.name+"/baseline_json_marshal", func(b *testing.B) {
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := json.Marshal([]any{nil, nil, m.Topic, m.Event, json.RawMessage(m.Payload)}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bs.name+"/baseline_json_any", func(b *testing.B) {
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				var v []any
				if err := json.Unmarshal(frame, &v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseReply(b *testing.B) {
	m := wire.Message{Event: wire.EventReply, Payload: []byte(`{"response":{"joined":"room:lobby","params":{}},"status":"ok"}`)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wire.ParseReply(&m); err != nil {
			b.Fatal(err)
		}
	}
}
