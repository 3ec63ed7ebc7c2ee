package wire_test

import (
	"encoding/json"
	"fmt"

	"github.com/phxgo/phxgo/wire"
)

func Example() {
	frame := []byte(`[null,null,"room:lobby","new_msg",{"body":"hello"}]`)
	m, err := wire.V2.DecodeServer(wire.Text, frame)
	if err != nil {
		panic(err)
	}
	fmt.Println(m.Topic, m.Event, m.JoinRef.IsNull(), m.Ref.IsNull())

	// The payload stays raw until someone wants it.
	var body struct{ Body string }
	if err := json.Unmarshal(m.Payload, &body); err != nil {
		panic(err)
	}
	fmt.Println(body.Body)
	// Output:
	// room:lobby new_msg true true
	// hello
}

func ExampleSerializer_encodeClient() {
	join := wire.Message{
		JoinRef: wire.NewRef("1"),
		Ref:     wire.NewRef("1"),
		Topic:   "room:lobby",
		Event:   wire.EventJoin,
		Payload: []byte(`{"token":"abc"}`),
	}
	frame, op, err := wire.V2.EncodeClient(nil, &join)
	fmt.Println(string(frame), op == wire.Text, err)

	heartbeat := wire.Message{Ref: wire.NewRef("2"), Topic: wire.TopicPhoenix, Event: wire.EventHeartbeat}
	frame, _, _ = wire.V1.EncodeClient(frame[:0], &heartbeat)
	fmt.Println(string(frame))
	// Output:
	// ["1","1","room:lobby","phx_join",{"token":"abc"}] true <nil>
	// {"topic":"phoenix","event":"heartbeat","payload":{},"ref":"2"}
}

func ExampleParseReply() {
	frame := []byte(`["1","2","room:lobby","phx_reply",{"response":{"reason":"unauthorized"},"status":"error"}]`)
	m, _ := wire.V2.DecodeServer(wire.Text, frame)
	r, err := wire.ParseReply(&m)
	fmt.Println(r.Status, string(r.Response), err)
	// Output: error {"reason":"unauthorized"} <nil>
}

func ExampleAppendReplyPayload() {
	reply := wire.Message{
		JoinRef: wire.NewRef("1"),
		Ref:     wire.NewRef("7"),
		Topic:   "room:lobby",
		Event:   wire.EventReply,
		Payload: wire.AppendReplyPayload(nil, "ok", json.RawMessage(`{"n":1}`)),
	}
	frame, _, _ := wire.V2.EncodeServer(nil, &reply)
	fmt.Println(string(frame))
	// Output: ["1","7","room:lobby","phx_reply",{"response":{"n":1},"status":"ok"}]
}

func ExampleSerializerFor() {
	for _, vsn := range []string{"", "2.0.0", "1.0.0", "3.0.0"} {
		s, err := wire.SerializerFor(vsn)
		if err != nil {
			fmt.Printf("%q: %v\n", vsn, err)
			continue
		}
		fmt.Printf("%q: %s\n", vsn, s.Vsn())
	}
	// Output:
	// "": 2.0.0
	// "2.0.0": 2.0.0
	// "1.0.0": 1.0.0
	// "3.0.0": wire: unsupported by this serializer: vsn 3.0.0
}

func Example_binary() {
	// A binary reply as Phoenix sends it: kind 1, four lengths, the header
	// fields, then the payload bytes.
	frame := []byte("\x01\x01\x01\x08\x02" + "1" + "2" + "room:bin" + "ok" + "\x00\x01\xff")
	m, err := wire.V2.DecodeServer(wire.Binary, frame)
	if err != nil {
		panic(err)
	}
	r, _ := wire.ParseReply(&m)
	fmt.Printf("%s %s %q %v\n", m.Topic, r.Status, r.Response, r.Binary)

	_, err = wire.V2.DecodeServer(wire.Binary, frame[:7])
	fmt.Println(err)
	// Output:
	// room:bin ok "\x00\x01\xff" true
	// wire: binary frame shorter than its header says: header fields run past the end at offset 5
}
