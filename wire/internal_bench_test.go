package wire

import (
	"encoding/json"
	"testing"
)

func benchPayload4K() []byte {
	var p []byte
	p = append(p, `{"messages":[`...)
	for i := 0; len(p) < 4000; i++ {
		if i > 0 {
			p = append(p, ',')
		}
		p = append(p, `{"id":12,"user":"user_3","body":"hello from the lobby, message number 12","ts":1795316680012,"seen":true,"tags":["chat","en"],"meta":{"edited":null,"score":3.5}}`...)
	}
	return append(p, "]}"...)
}

func BenchmarkScanPayload(b *testing.B) {
	p := benchPayload4K()
	b.Run("full", func(b *testing.B) {
		b.SetBytes(int64(len(p)))
		for b.Loop() {
			if _, err := skipComposite(p, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Valid", func(b *testing.B) {
		b.SetBytes(int64(len(p)))
		for b.Loop() {
			json.Valid(p)
		}
	})
}

func BenchmarkScanLongString(b *testing.B) {
	p := []byte(`"` + string(make([]byte, 0)))
	for len(p) < 4000 {
		p = append(p, "Phoenix Channels carry soft-realtime messages. "...)
	}
	p = append(p, '"')
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		if _, _, err := scanString(p, 0); err != nil {
			b.Fatal(err)
		}
	}
}
