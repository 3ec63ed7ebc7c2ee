package wire_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/phxgo/phxgo/wire"
)

// frame is one websocket data frame of a recorded transcript.
type frame struct {
	file string
	line int
	conn string
	dir  string // "send" (client to server) or "recv"
	op   wire.Opcode
	data []byte
}

func (f frame) String() string { return f.file + ":" + strconv.Itoa(f.line) }

// serializerOf says which serializer a transcript was recorded with.
func serializerOf(file string) wire.Serializer {
	if strings.HasPrefix(filepath.Base(file), "vsn1_") {
		return wire.V1
	}
	return wire.V2
}

var omitted = regexp.MustCompile(`\.\.\.<(\d+) bytes omitted>\.\.\.`)

// loadTranscripts reads every websocket data frame of the recorded
// transcripts. Frames recorded shortened (over 64 KiB) are rebuilt when
// their omitted middle is a run of one character, and skipped when the
// rebuilt frame does not match the recorded length and hash or is over
// 2 MiB.
func loadTranscripts(t testing.TB) []frame {
	t.Helper()
	frames, err := transcripts()
	if err != nil {
		t.Fatal(err)
	}
	return frames
}

// transcripts reads the files once for all tests and fuzz seeds.
var transcripts = sync.OnceValues(func() ([]frame, error) {
	files, err := filepath.Glob("../testdata/phoenix/*.jsonl")
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no transcripts: %v", err)
	}
	var frames []frame
	for _, file := range files {
		if strings.HasSuffix(file, "longpoll.jsonl") {
			continue // HTTP exchanges, not websocket frames
		}
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for n := 1; sc.Scan(); n++ {
			var l struct {
				Dir, Conn, Opcode, Data, Note, Sha256 string
				Len                                   int
				Truncated                             bool
			}
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				return nil, fmt.Errorf("%s:%d: %v", file, n, err)
			}
			fr := frame{file: filepath.Base(file), line: n, conn: l.Conn, dir: l.Dir, data: []byte(l.Data)}
			switch l.Opcode {
			case "text":
				fr.op = wire.Text
				if strings.Contains(l.Note, "hex-encoded") {
					if fr.data, err = hex.DecodeString(l.Data); err != nil {
						return nil, err
					}
				}
			case "binary":
				fr.op = wire.Binary
				if fr.data, err = hex.DecodeString(l.Data); err != nil {
					return nil, err
				}
			default:
				continue
			}
			if l.Truncated {
				// The 7 and 10 MiB frames add nothing the 1 MiB ones do not
				// test, and cost seconds under the race detector.
				if l.Len > 2<<20 {
					continue
				}
				if fr.data = rebuild(l.Data, l.Len, l.Sha256); fr.data == nil {
					continue
				}
			}
			frames = append(frames, fr)
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	return frames, nil
})

func rebuild(data string, size int, sum string) []byte {
	loc := omitted.FindStringSubmatchIndex(data)
	if loc == nil || loc[0] == 0 {
		return nil
	}
	n, _ := strconv.Atoi(data[loc[2]:loc[3]])
	full := data[:loc[0]] + strings.Repeat(data[loc[0]-1:loc[0]], n) + data[loc[1]:]
	h := sha256.Sum256([]byte(full))
	if len(full) != size || hex.EncodeToString(h[:]) != sum {
		return nil
	}
	return []byte(full)
}

func TestTranscriptServerFrames(t *testing.T) {
	t.Parallel()
	kinds := map[string]int{}
	for _, fr := range loadTranscripts(t) {
		if fr.dir != "recv" {
			continue
		}
		s := serializerOf(fr.file)
		m, err := s.DecodeServer(fr.op, fr.data)
		if err != nil {
			t.Errorf("%v: %v", fr, err)
			continue
		}
		kind := classify(t, fr, s, &m)
		kinds[kind]++
		// Re-encoding gives Phoenix's bytes back: the header is written as
		// Phoenix writes it and the payload is passed through.
		// Numeric refs and a null topic come back as strings.
		out, op, err := s.EncodeServer(nil, &m)
		if fr.conn == "numeric_refs" || fr.conn == "null_topic" {
			out = fr.data
		}
		if err != nil || op != fr.op || !bytes.Equal(out, fr.data) {
			t.Errorf("%v: re-encoded (%v, %v)\n got %.300q\nwant %.300q", fr, op, err, out, fr.data)
		}
	}
	t.Logf("server frames by kind: %v", kinds)
	for _, k := range []string{"reply ok", "reply error", "broadcast", "push", "phx_error", "phx_close",
		"binary reply", "binary push", "binary broadcast", "v1 reply ok", "v1 reply error", "v1 broadcast or push", "v1 phx_error", "v1 phx_close"} {
		if kinds[k] == 0 {
			t.Errorf("no %q frame checked", k)
		}
	}
}

// classify checks what each kind of server message must look like and
// names the kind.
func classify(t *testing.T, fr frame, s wire.Serializer, m *wire.Message) string {
	t.Helper()
	prefix := ""
	if s == wire.V1 {
		prefix = "v1 "
		if !m.JoinRef.IsNull() {
			t.Errorf("%v: V1 server message with a join_ref", fr)
		}
	}
	if m.Binary {
		switch {
		case m.Event == wire.EventReply:
			if m.Status != "ok" || m.Ref.IsNull() || m.JoinRef.IsNull() {
				t.Errorf("%v: binary reply %+v", fr, m)
			}
			return "binary reply"
		case m.JoinRef.IsNull():
			if fr.data[0] != wire.KindBroadcast {
				t.Errorf("%v: kind %d decoded as broadcast", fr, fr.data[0])
			}
			return "binary broadcast"
		default:
			if !m.Ref.IsNull() || fr.data[0] != wire.KindPush {
				t.Errorf("%v: binary push %+v", fr, m)
			}
			return "binary push"
		}
	}
	if !json.Valid(m.Payload) {
		t.Errorf("%v: payload %q is not JSON", fr, m.Payload)
	}
	switch m.Event {
	case wire.EventReply:
		r, err := wire.ParseReply(m)
		if err != nil || (r.Status != "ok" && r.Status != "error") || r.Response == nil || r.Binary {
			t.Errorf("%v: reply %+v %v", fr, r, err)
		}
		if m.Ref.IsNull() {
			t.Errorf("%v: reply without ref", fr)
		}
		if strings.Contains(string(r.Response), "unmatched topic") && !m.JoinRef.IsNull() {
			t.Errorf("%v: unmatched-topic reply with a join_ref", fr)
		}
		return prefix + "reply " + r.Status
	case wire.EventError, wire.EventClose:
		// Phoenix puts the channel's join_ref in both ref fields (V1 has
		// only ref).
		if m.Ref.IsNull() || (s == wire.V2 && m.Ref != m.JoinRef) {
			t.Errorf("%v: %s refs %+v %+v", fr, m.Event, m.JoinRef, m.Ref)
		}
		return prefix + m.Event
	}
	if !m.Ref.IsNull() {
		t.Errorf("%v: %s with a ref", fr, m.Event)
	}
	if s == wire.V1 {
		return "v1 broadcast or push"
	}
	if m.JoinRef.IsNull() {
		return "broadcast"
	}
	if m.Event == "presence_diff" {
		t.Errorf("%v: presence_diff with a join_ref", fr)
	}
	return "push"
}

// Frames the recorder sent on purpose to break the server, by connection
// name: the first data frame of each such connection is malformed and
// must be rejected with the given error. Phoenix itself accepts a numeric
// event (it answers "unmatched topic" or crashes the channel); this package
// rejects it, since every message it hands on has a string event. A null
// topic is accepted as "" because Phoenix echoes it back.
var malformedCases = map[string]error{
	"invalid_json":            wire.ErrMalformed,
	"empty_text_frame":        wire.ErrMalformed,
	"four_element_array":      wire.ErrArity,
	"json_object_on_v2":       wire.ErrFieldType,
	"invalid_utf8_text_frame": wire.ErrInvalidUTF8,
	"malformed_binary_frame":  wire.ErrUnknownKind,
	"truncated_binary_push":   wire.ErrTruncated,
}

func TestTranscriptClientFrames(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	rejected := 0
	for _, fr := range loadTranscripts(t) {
		if fr.dir != "send" {
			continue
		}
		s := serializerOf(fr.file)
		m, err := s.DecodeClient(fr.op, fr.data)
		want := error(nil)
		if fr.file == "malformed_frames.jsonl" {
			if k, ok := malformedCases[fr.conn]; ok && !seen[fr.conn] {
				want = k
			}
			seen[fr.conn] = true
			if bytes.Contains(fr.data, []byte(`,123,`)) {
				want = wire.ErrFieldType
			}
		}
		if want != nil {
			if !errors.Is(err, want) || !errors.Is(err, wire.ErrMalformed) {
				t.Errorf("%v: err = %v, want %v", fr, err, want)
			}
			rejected++
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", fr, err)
			continue
		}
		// The recorder wrote its frames as the JavaScript client does, so
		// encoding gives them back byte for byte, except where the frame
		// itself departs from that form (numeric refs, extra elements).
		out, op, err := s.EncodeClient(nil, &m)
		if err != nil || op != fr.op {
			t.Errorf("%v: re-encode: %v %v", fr, op, err)
			continue
		}
		if fr.conn != "numeric_refs" && fr.conn != "six_element_array" && fr.conn != "null_topic" || bytes.Contains(fr.data, []byte(`"hb"`)) {
			if !bytes.Equal(out, fr.data) {
				t.Errorf("%v: re-encoded\n got %.300q\nwant %.300q", fr, out, fr.data)
			}
		}
	}
	if rejected != len(malformedCases)+2 {
		t.Errorf("rejected %d malformed frames, want %d", rejected, len(malformedCases)+2)
	}
}
